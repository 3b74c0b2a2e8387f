/** The file browser's dialogs: a new folder's name, and confirming a delete. */
import type { EntryView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { ApiError } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { ConfirmDialog } from "../../components/confirm-dialog.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";

export function NewFolderDialog({
  open,
  onClose,
  onCreate,
}: {
  open: boolean;
  onClose: () => void;
  onCreate: (name: string) => Promise<void>;
}) {
  const [name, setName] = useState("");
  const create = useAction(async () => {
    const folder = name.trim();
    if (folder.includes("/")) throw new ApiError(0, "invalid_argument", "a folder name has no /");
    await onCreate(folder);
    setName("");
    onClose();
  });
  return (
    <Dialog title="New folder" open={open} onClose={onClose}>
      <DialogForm action={create} submitLabel="Create" busyLabel="Creating…" onCancel={onClose}>
        <Field label="Folder name">
          <input type="text" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
      </DialogForm>
    </Dialog>
  );
}

export function DeleteEntryDialog({
  entry,
  onClose,
  onDelete,
}: {
  entry: EntryView | null;
  onClose: () => void;
  onDelete: (entry: EntryView) => Promise<void>;
}) {
  return (
    <ConfirmDialog
      title={`Delete ${entry?.name ?? ""}?`}
      open={entry !== null}
      onClose={onClose}
      confirmLabel="Delete"
      onConfirm={async () => {
        if (entry) await onDelete(entry);
      }}
    >
      <p>
        <code>{entry?.path}</code>
        {entry?.type === "directory" ? " and everything in it are" : " is"} removed from the sandbox.
      </p>
    </ConfirmDialog>
  );
}
