/** "Set timeout": a new inactivity timeout, counted from now. */
import type { SandboxView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";

export function TimeoutDialog({
  sandbox,
  open,
  onClose,
  onChanged,
}: {
  sandbox: SandboxView;
  open: boolean;
  onClose: () => void;
  onChanged: (s: SandboxView) => void;
}) {
  const [seconds, setSeconds] = useState(String(sandbox.timeout_sec));
  const save = useAction(async () => {
    const body = { timeout_sec: Number(seconds) };
    onChanged(await api<SandboxView>("POST", `/v1/sandboxes/${seg(sandbox.id)}/timeout`, { body }));
    onClose();
  });
  return (
    <Dialog title="Set timeout" open={open} onClose={onClose}>
      <DialogForm action={save} submitLabel="Save" busyLabel="Saving…" onCancel={onClose}>
        <Field label="Timeout (seconds)" hint="counted from now; idle this long, the sandbox times out">
          <input
            type="number"
            min={1}
            step={1}
            required
            value={seconds}
            onInput={(e) => setSeconds(e.currentTarget.value)}
          />
        </Field>
      </DialogForm>
    </Dialog>
  );
}
