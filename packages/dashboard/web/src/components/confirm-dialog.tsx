import type { ComponentChildren } from "preact";
import { useAction } from "../api/use-api.js";
import { Dialog } from "./dialog.js";
import { ErrorNote } from "./error-note.js";

/**
 * A destructive action's confirmation: the dialog stays open with the API's error when the
 * action fails, and closes when it succeeds.
 */
export function ConfirmDialog({
  title,
  open,
  onClose,
  confirmLabel,
  onConfirm,
  children,
}: {
  title: string;
  open: boolean;
  onClose: () => void;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  children: ComponentChildren;
}) {
  const action = useAction(onConfirm);
  const close = () => {
    action.clear();
    onClose();
  };
  return (
    <Dialog title={title} open={open} onClose={close}>
      <form
        method="dialog"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await action.run()) close();
        }}
      >
        {children}
        <ErrorNote error={action.error} />
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={action.busy}>
            {confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
