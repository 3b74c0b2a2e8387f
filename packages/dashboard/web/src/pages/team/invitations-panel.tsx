/** The team's open invitations, each revocable (owners and admins only). */
import type { InvitationView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import type { Loaded } from "../../api/use-api.js";
import { ConfirmDialog } from "../../components/confirm-dialog.js";
import type { Column } from "../../components/data-table.js";
import { DataTable } from "../../components/data-table.js";
import { ErrorNote } from "../../components/error-note.js";
import { Panel } from "../../components/page.js";
import { formatRelative } from "../../format.js";

export function InvitationsPanel({ invitations }: { invitations: Loaded<InvitationView[]> }) {
  const [target, setTarget] = useState<InvitationView | null>(null);
  const columns: Column<InvitationView>[] = [
    { label: "Email", render: (i) => i.email },
    { label: "Role", render: (i) => i.role },
    { label: "Sent", render: (i) => formatRelative(i.created_at), wide: true },
    { label: "Expires", render: (i) => formatRelative(i.expires_at) },
    {
      label: "Actions",
      render: (i) => (
        <button type="button" class="danger" onClick={() => setTarget(i)}>
          Revoke
        </button>
      ),
    },
  ];
  return (
    <Panel title="Open invitations">
      <ErrorNote error={invitations.error} />
      {invitations.data ? (
        <DataTable
          rows={invitations.data}
          columns={columns}
          rowKey={(i) => i.id}
          caption="Open invitations"
          empty="No open invitations."
        />
      ) : (
        invitations.loading && <p class="loading">Loading invitations…</p>
      )}
      <ConfirmDialog
        title="Revoke invitation?"
        open={target !== null}
        onClose={() => setTarget(null)}
        confirmLabel="Revoke"
        onConfirm={async () => {
          if (!target) return;
          await api("DELETE", `/v1/team/invitations/${seg(target.id)}`);
          invitations.reload();
        }}
      >
        <p>
          Revoke the invitation for <strong>{target?.email}</strong>? Its link stops working.
        </p>
      </ConfirmDialog>
    </Panel>
  );
}
