import { ApiError } from "../api/client.js";

/** An error as the API gave it: its stable code and its message. */
export function ErrorNote({ error, onDismiss }: { error: Error | null | undefined; onDismiss?: () => void }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : "error";
  return (
    <div class="error-note" role="alert">
      <code class="error-code">{code}</code> <span class="error-message">{error.message}</span>
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss} aria-label="Dismiss error">
          ×
        </button>
      )}
    </div>
  );
}
