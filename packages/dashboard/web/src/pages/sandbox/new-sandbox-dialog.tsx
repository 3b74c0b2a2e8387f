/** "New sandbox": a template, an inactivity timeout and metadata, then the created sandbox's page. */
import type { CreatedSandboxView, SandboxCreateBody, TemplateView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { ApiError, api } from "../../api/client.js";
import { useAction, useApi } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { ErrorNote } from "../../components/error-note.js";
import { Field } from "../../components/field.js";
import { navigate } from "../../router.js";

/** `key=value` per line (blank lines skipped); a line without `=` is an error naming it. */
export function parseMetadata(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new ApiError(0, "invalid_argument", `metadata line ${i + 1}: write it as key=value`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** Templates a sandbox can start from: every base and snapshot, and built ones with a ready build. */
const usable = (t: TemplateView) => t.kind !== "built" || t.build_id !== null;

export function NewSandboxDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog title="New sandbox" open={open} onClose={onClose}>
      <NewSandboxForm onClose={onClose} />
    </Dialog>
  );
}

function NewSandboxForm({ onClose }: { onClose: () => void }) {
  const templates = useApi(
    (signal) => api<{ items: TemplateView[] }>("GET", "/v1/templates", { signal }).then((r) => r.items),
    [],
  );
  const [template, setTemplate] = useState("");
  const [timeout, setTimeoutSec] = useState("300");
  const [metadata, setMetadata] = useState("");
  const choices = (templates.data ?? []).filter(usable);
  const chosen = template || (choices.find((t) => t.name === "base") ?? choices[0])?.name || "";
  const create = useAction(async () => {
    const body: SandboxCreateBody = {
      template: chosen,
      timeout_sec: Number(timeout),
      metadata: parseMetadata(metadata),
    };
    const created = await api<CreatedSandboxView>("POST", "/v1/sandboxes", { body });
    onClose();
    navigate(`/sandboxes/${encodeURIComponent(created.id)}`);
  });
  return (
    <DialogForm
      action={create}
      submitLabel="Create"
      busyLabel="Creating…"
      disabled={!chosen}
      onCancel={onClose}
    >
      <ErrorNote error={templates.error} />
      <Field label="Template">
        <select
          required
          value={chosen}
          disabled={templates.loading && !templates.data}
          onChange={(e) => setTemplate(e.currentTarget.value)}
        >
          {choices.map((t) => (
            <option key={t.id} value={t.name}>
              {t.name} ({t.kind})
            </option>
          ))}
        </select>
      </Field>
      <Field label="Timeout (seconds)" hint="idle this long, the sandbox pauses">
        <input
          type="number"
          min={1}
          step={1}
          required
          value={timeout}
          onInput={(e) => setTimeoutSec(e.currentTarget.value)}
        />
      </Field>
      <Field label="Metadata" hint="optional; one key=value per line">
        <textarea rows={3} value={metadata} onInput={(e) => setMetadata(e.currentTarget.value)} />
      </Field>
    </DialogForm>
  );
}
