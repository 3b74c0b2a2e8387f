/**
 * An invitation link (`/#/invite?token=…`): signed in, accepting moves the session into the
 * team; signed out, it creates the invited email's account with a password.
 */
import type { AuthSessionView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../api/client.js";
import { useAction } from "../api/use-api.js";
import { NameField, PasswordField } from "../components/account-fields.js";
import { ErrorNote } from "../components/error-note.js";
import { href, navigate, useRoute } from "../router.js";
import { adopt } from "../session.js";
import { AuthCard } from "./sign-in.js";

export function AcceptInvitePage({
  session,
  onSession,
}: {
  session: AuthSessionView | null;
  onSession: (s: AuthSessionView) => void;
}) {
  const token = useRoute().query.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const accept = useAction(async () => {
    const body = session ? { token } : { token, password, ...(name ? { name } : {}) };
    onSession(adopt(await api<AuthSessionView>("POST", "/v1/auth/invitations/accept", { body })));
    navigate("/sandboxes");
  });
  if (!token) {
    return (
      <AuthCard title="Invitation">
        <p>This link carries no invitation token. Ask for a new invitation.</p>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Join a team">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          accept.run();
        }}
      >
        {session ? (
          <p>
            Accept as <strong>{session.user.email}</strong>. The invitation must be for this email.
          </p>
        ) : (
          <>
            <p>
              Set a password for the invited email's new account, or{" "}
              <a href={href(`/signin?next=${encodeURIComponent(`/invite?token=${token}`)}`)}>sign in</a> first
              if you have one.
            </p>
            <NameField value={name} onValue={setName} />
            <PasswordField value={password} onValue={setPassword} />
          </>
        )}
        <ErrorNote error={accept.error} />
        <button type="submit" class="primary" disabled={accept.busy}>
          Accept invitation
        </button>
      </form>
    </AuthCard>
  );
}
