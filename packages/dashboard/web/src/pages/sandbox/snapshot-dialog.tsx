/**
 * "Snapshot": freezes the sandbox into a named snapshot template (it keeps running, or stays
 * paused), then offers the Snapshots page and a new sandbox started from the snapshot.
 */
import type {
  CreatedSandboxView,
  SandboxCreateBody,
  SandboxView,
  SnapshotCreateBody,
  TemplateView,
} from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { ErrorNote } from "../../components/error-note.js";
import { Field } from "../../components/field.js";
import { href, navigate } from "../../router.js";

/** A name the API accepts (letters, digits, '.', '_', '-'), unique enough to prefill. */
function suggestedName(sandbox: SandboxView): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  return `${sandbox.template.replace(/[^a-zA-Z0-9._-]/g, "-")}-${stamp}`.slice(0, 64);
}

export function SnapshotDialog({
  sandbox,
  open,
  onClose,
}: {
  sandbox: SandboxView;
  open: boolean;
  onClose: () => void;
}) {
  return (
    <Dialog title="Snapshot sandbox" open={open} onClose={onClose}>
      <SnapshotForm sandbox={sandbox} onClose={onClose} />
    </Dialog>
  );
}

function SnapshotForm({ sandbox, onClose }: { sandbox: SandboxView; onClose: () => void }) {
  const [name, setName] = useState(() => suggestedName(sandbox));
  const [snapshot, setSnapshot] = useState<TemplateView | null>(null);
  const create = useAction(async () => {
    const body: SnapshotCreateBody = { sandbox_id: sandbox.id, name: name.trim() };
    setSnapshot(await api<TemplateView>("POST", "/v1/snapshots", { body }));
  });
  // A create names a snapshot by its name, as it names any template.
  const start = useAction(async (from: TemplateView) => {
    const body: SandboxCreateBody = { template: from.name };
    const created = await api<CreatedSandboxView>("POST", "/v1/sandboxes", { body });
    onClose();
    navigate(`/sandboxes/${encodeURIComponent(created.id)}`);
  });

  if (snapshot) {
    return (
      <div>
        <p role="status">
          Snapshot <strong>{snapshot.name}</strong> created from <code>{sandbox.id}</code>.
        </p>
        <p>
          <a href={href("/snapshots")} onClick={onClose}>
            Snapshots page
          </a>
        </p>
        <ErrorNote error={start.error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Close
          </button>
          <button type="button" class="primary" onClick={() => start.run(snapshot)} disabled={start.busy}>
            {start.busy ? "Starting…" : "New sandbox from it"}
          </button>
        </div>
      </div>
    );
  }
  return (
    <DialogForm action={create} submitLabel="Create snapshot" busyLabel="Creating…" onCancel={onClose}>
      <p>
        Freezes <code>{sandbox.id}</code>'s memory and disk into a snapshot that new sandboxes start from. The
        sandbox stays {sandbox.state}.
      </p>
      <Field label="Snapshot name" hint="letters, digits, '.', '_' and '-'; unique in the team">
        <input required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
    </DialogForm>
  );
}
