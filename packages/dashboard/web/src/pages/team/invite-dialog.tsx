/** "Invite member": an email and a role; the accept link is shown once. */
import type { InvitationView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogDone, DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";
import { OnceSecret } from "../../components/once-secret.js";

export const ROLES = ["member", "admin", "owner"] as const;
export type Role = (typeof ROLES)[number];

type CreatedInvitation = InvitationView & { token: string; accept_url: string };

export function InviteDialog({
  open,
  onClose,
  onInvited,
}: {
  open: boolean;
  onClose: () => void;
  onInvited: () => void;
}) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const invite = useAction(async () => {
    setCreated(await api<CreatedInvitation>("POST", "/v1/team/invitations", { body: { email, role } }));
    onInvited();
  });
  const close = () => {
    setEmail("");
    setRole("member");
    setCreated(null);
    invite.clear();
    onClose();
  };
  return (
    <Dialog title="Invite member" open={open} onClose={close}>
      {created ? (
        <DialogDone onDone={close}>
          <p>
            Send this link to <strong>{created.email}</strong>. It works once, until{" "}
            {new Date(created.expires_at).toLocaleString()}.
          </p>
          <OnceSecret label="Invitation link" value={created.accept_url} />
        </DialogDone>
      ) : (
        <DialogForm action={invite} submitLabel="Send invitation" onCancel={close}>
          <Field label="Email">
            <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </Field>
          <Field label="Role">
            <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </Field>
        </DialogForm>
      )}
    </Dialog>
  );
}
