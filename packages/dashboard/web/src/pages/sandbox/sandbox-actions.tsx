/** Pause, Resume and Kill for one sandbox (a list row's or the detail page's), Kill confirmed first. */
import type { SandboxView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { ErrorNote } from "../../components/error-note.js";

/** States a sandbox can still be destroyed from (a stopped one is gone already). */
const KILLABLE = new Set(["pending", "running", "paused", "error", "missing"]);

export function SandboxActions({
  sandbox,
  onChanged,
  onKilled,
  children,
}: {
  sandbox: SandboxView;
  /** After a pause or resume, with the sandbox as the API answered it. */
  onChanged: (sandbox: SandboxView) => void;
  onKilled: () => void;
  /** More buttons, placed before Kill. */
  children?: preact.ComponentChildren;
}) {
  const path = `/v1/sandboxes/${seg(sandbox.id)}`;
  const [confirmKill, setConfirmKill] = useState(false);
  const pause = useAction(async () =>
    onChanged(await api<SandboxView>("POST", `${path}/pause`, { body: {} })),
  );
  const resume = useAction(async () =>
    onChanged(await api<SandboxView>("POST", `${path}/resume`, { body: {} })),
  );
  const kill = useAction(async () => {
    await api("DELETE", path);
    setConfirmKill(false);
    onKilled();
  });
  const busy = pause.busy || resume.busy || kill.busy;
  const error = pause.error ?? resume.error ?? (confirmKill ? null : kill.error);
  const clear = () => {
    pause.clear();
    resume.clear();
    kill.clear();
  };
  return (
    <>
      <div class="row-actions">
        {sandbox.state === "running" && (
          <button type="button" onClick={() => pause.run()} disabled={busy}>
            {pause.busy ? "Pausing…" : "Pause"}
          </button>
        )}
        {sandbox.state === "paused" && (
          <button type="button" onClick={() => resume.run()} disabled={busy}>
            {resume.busy ? "Resuming…" : "Resume"}
          </button>
        )}
        {children}
        {KILLABLE.has(sandbox.state) && (
          <button type="button" class="danger" onClick={() => setConfirmKill(true)} disabled={busy}>
            Kill
          </button>
        )}
      </div>
      <ErrorNote error={error} onDismiss={clear} />
      <Dialog title="Kill sandbox?" open={confirmKill} onClose={() => setConfirmKill(false)}>
        <p>
          <code>{sandbox.id}</code> is destroyed with its disk and memory. This cannot be undone.
        </p>
        <ErrorNote error={kill.error} />
        <div class="dialog-actions">
          <button type="button" onClick={() => setConfirmKill(false)}>
            Cancel
          </button>
          <button type="button" class="danger" onClick={() => kill.run()} disabled={kill.busy}>
            {kill.busy ? "Killing…" : "Kill"}
          </button>
        </div>
      </Dialog>
    </>
  );
}
