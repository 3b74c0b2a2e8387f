/**
 * The team's members and roles, and its invitations. Owners and admins manage them; members
 * see the list (and may leave). The API decides in the end: its refusals show as errors.
 */
import type { InvitationView, MemberView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useAction, useApi } from "../api/use-api.js";
import { ConfirmDialog } from "../components/confirm-dialog.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page, Panel } from "../components/page.js";
import { formatRelative } from "../format.js";
import type { PageProps } from "../routes.js";
import { canManage, useSession } from "../session.js";
import { InvitationsPanel } from "./team/invitations-panel.js";
import { InviteDialog, ROLES, type Role } from "./team/invite-dialog.js";

export function MembersPage(_props: PageProps) {
  const { session } = useSession();
  const manager = canManage(session);
  const [inviting, setInviting] = useState(false);
  const [removing, setRemoving] = useState<MemberView | null>(null);
  const members = useApi(
    async (signal) => (await api<{ items: MemberView[] }>("GET", "/v1/team/members", { signal })).items,
    [],
  );
  const invitations = useApi(
    async (signal) =>
      manager
        ? (await api<{ items: InvitationView[] }>("GET", "/v1/team/invitations", { signal })).items
        : [],
    [manager],
  );
  const setRole = useAction(async (m: MemberView, role: Role) => {
    try {
      await api("PATCH", `/v1/team/members/${seg(m.user_id)}`, { body: { role } });
    } finally {
      // Reloading also puts a refused change's select back to the stored role.
      members.reload();
    }
  });
  const columns: Column<MemberView>[] = [
    { label: "Email", render: (m) => m.email },
    { label: "Name", render: (m) => m.name || "–", wide: true },
    {
      label: "Role",
      render: (m) => (
        <select
          aria-label={`Role for ${m.email}`}
          value={m.role}
          disabled={!manager || setRole.busy}
          onChange={(e) => setRole.run(m, e.currentTarget.value as Role)}
        >
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      ),
    },
    { label: "Joined", render: (m) => formatRelative(m.created_at), wide: true },
    {
      label: "Actions",
      render: (m) =>
        manager || m.user_id === session.user.id ? (
          <button type="button" class="danger" onClick={() => setRemoving(m)}>
            {m.user_id === session.user.id ? "Leave" : "Remove"}
          </button>
        ) : null,
    },
  ];
  return (
    <Page
      title="Members"
      actions={
        manager && (
          <button type="button" class="primary" onClick={() => setInviting(true)}>
            Invite
          </button>
        )
      }
    >
      {!manager && (
        <p class="field-hint">
          You are a {session.role} of {session.team.name}: owners and admins change roles and invite.
        </p>
      )}
      <ErrorNote error={setRole.error} onDismiss={setRole.clear} />
      <Panel title="Members">
        <ErrorNote error={members.error} />
        {members.data ? (
          <DataTable
            rows={members.data}
            columns={columns}
            rowKey={(m) => m.user_id}
            caption="Members"
            empty="No members."
          />
        ) : (
          members.loading && <p class="loading">Loading members…</p>
        )}
      </Panel>
      {manager && <InvitationsPanel invitations={invitations} />}
      <InviteDialog open={inviting} onClose={() => setInviting(false)} onInvited={invitations.reload} />
      <ConfirmDialog
        title={removing?.user_id === session.user.id ? "Leave team?" : "Remove member?"}
        open={removing !== null}
        onClose={() => setRemoving(null)}
        confirmLabel={removing?.user_id === session.user.id ? "Leave" : "Remove"}
        onConfirm={async () => {
          if (!removing) return;
          await api("DELETE", `/v1/team/members/${seg(removing.user_id)}`);
          if (removing.user_id === session.user.id) window.location.reload();
          else members.reload();
        }}
      >
        <p>
          {removing?.user_id === session.user.id
            ? `Leave ${session.team.name}? You lose access to its sandboxes at once.`
            : `Remove ${removing?.email} from ${session.team.name}? They lose access at once.`}
        </p>
      </ConfirmDialog>
    </Page>
  );
}
