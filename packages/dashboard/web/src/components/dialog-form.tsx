import type { ComponentChildren } from "preact";
import { ErrorNote } from "./error-note.js";

/** What a dialog's form runs: `useAction`'s result. */
export interface FormAction {
  run: () => Promise<boolean>;
  busy: boolean;
  error: Error | null;
}

/**
 * A dialog's form: its fields, the action's error as the API gave it, then Cancel and the
 * submit button (disabled while the action runs, or when `disabled`).
 */
export function DialogForm({
  action,
  submitLabel,
  busyLabel,
  onCancel,
  disabled = false,
  children,
}: {
  action: FormAction;
  submitLabel: string;
  /** The submit button's text while the action runs (default: unchanged). */
  busyLabel?: string;
  onCancel: () => void;
  disabled?: boolean;
  children: ComponentChildren;
}) {
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        action.run();
      }}
    >
      {children}
      <ErrorNote error={action.error} />
      <div class="dialog-actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={action.busy || disabled}>
          {action.busy && busyLabel ? busyLabel : submitLabel}
        </button>
      </div>
    </form>
  );
}

/** A dialog's last view (a secret shown once, a link): its content, then Done. */
export function DialogDone({ onDone, children }: { onDone: () => void; children: ComponentChildren }) {
  return (
    <>
      {children}
      <div class="dialog-actions">
        <button type="button" class="primary" onClick={onDone}>
          Done
        </button>
      </div>
    </>
  );
}
