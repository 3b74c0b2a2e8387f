/** "Fork": copies of the running sandbox (memory and disk) on its host, listed as links. */
import type { CreatedSandboxView, SandboxForkBody, SandboxView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";
import { href } from "../../router.js";

/** The API's limit on one fork call (its default configuration). */
const MAX_FORKS = 16;

export function ForkDialog({
  sandbox,
  open,
  onClose,
}: {
  sandbox: SandboxView;
  open: boolean;
  onClose: () => void;
}) {
  return (
    <Dialog title="Fork sandbox" open={open} onClose={onClose}>
      <ForkForm sandbox={sandbox} onClose={onClose} />
    </Dialog>
  );
}

function ForkForm({ sandbox, onClose }: { sandbox: SandboxView; onClose: () => void }) {
  const [count, setCount] = useState("1");
  const [forks, setForks] = useState<CreatedSandboxView[] | null>(null);
  const fork = useAction(async () => {
    const body: SandboxForkBody = { count: Number(count) };
    const res = await api<{ items: CreatedSandboxView[] }>("POST", `/v1/sandboxes/${seg(sandbox.id)}/fork`, {
      body,
    });
    setForks(res.items);
  });

  if (forks) {
    return (
      <div>
        <p role="status">
          {forks.length === 1 ? "One fork" : `${forks.length} forks`} of <code>{sandbox.id}</code>:
        </p>
        <ul class="fork-list">
          {forks.map((f) => (
            <li key={f.id}>
              <a class="mono" href={href(`/sandboxes/${seg(f.id)}`)} onClick={onClose}>
                {f.id}
              </a>
            </li>
          ))}
        </ul>
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    );
  }
  return (
    <DialogForm action={fork} submitLabel="Fork" busyLabel="Forking…" onCancel={onClose}>
      <p>
        New sandboxes start as copies of <code>{sandbox.id}</code>'s memory and disk, on the same host.
      </p>
      <Field label="Count" hint={`1 to ${MAX_FORKS}`}>
        <input
          type="number"
          min={1}
          max={MAX_FORKS}
          step={1}
          required
          value={count}
          onInput={(e) => setCount(e.currentTarget.value)}
        />
      </Field>
    </DialogForm>
  );
}
