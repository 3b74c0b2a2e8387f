import { useState } from "preact/hooks";

/** A secret the API shows once (a new key, a channel's signing secret), with a copy button. */
export function OnceSecret({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="once-secret" role="status">
      <p>
        <strong>{label}</strong> — shown only now; copy it somewhere safe.
      </p>
      <div class="secret-row">
        <code class="secret" data-testid="secret">
          {value}
        </code>
        <button
          type="button"
          onClick={() =>
            navigator.clipboard?.writeText(value).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}
