/** Webhook channels: where the team's events are posted; create (secret shown once), delete. */
import type { ChannelView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useApi } from "../api/use-api.js";
import { ConfirmDialog } from "../components/confirm-dialog.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page } from "../components/page.js";
import { formatRelative } from "../format.js";
import { href } from "../router.js";
import type { PageProps } from "../routes.js";
import { canManage, useSession } from "../session.js";
import { NewChannelDialog } from "./channels/new-channel-dialog.js";

export function ChannelsPage(_props: PageProps) {
  const { session } = useSession();
  const manager = canManage(session);
  const [creating, setCreating] = useState(false);
  const [target, setTarget] = useState<ChannelView | null>(null);
  const channels = useApi(
    async (signal) =>
      manager ? (await api<{ items: ChannelView[] }>("GET", "/v1/channels", { signal })).items : [],
    [manager],
  );
  const columns: Column<ChannelView>[] = [
    { label: "Name", render: (c) => <a href={href(`/channels/${seg(c.id)}`)}>{c.name}</a> },
    { label: "URL", render: (c) => <code>{c.url}</code>, wide: true },
    { label: "Events", render: (c) => (c.events.length ? c.events.join(", ") : "all") },
    { label: "Enabled", render: (c) => (c.enabled ? "yes" : "no"), wide: true },
    { label: "Created", render: (c) => formatRelative(c.created_at), wide: true },
    {
      label: "Actions",
      render: (c) => (
        <button type="button" class="danger" onClick={() => setTarget(c)}>
          Delete
        </button>
      ),
    },
  ];
  return (
    <Page
      title="Webhooks"
      actions={
        manager && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New webhook
          </button>
        )
      }
    >
      <p class="field-hint">
        The team's events (sandboxes, snapshots, template builds, hosts) posted as JSON.
      </p>
      {!manager && <p class="empty">Only the team's owners and admins see and manage its webhooks.</p>}
      <ErrorNote error={channels.error} />
      {channels.data
        ? manager && (
            <DataTable
              rows={channels.data}
              columns={columns}
              rowKey={(c) => c.id}
              caption="Webhooks"
              empty="No webhooks yet."
            />
          )
        : channels.loading && <p class="loading">Loading webhooks…</p>}
      <NewChannelDialog open={creating} onClose={() => setCreating(false)} onCreated={channels.reload} />
      <ConfirmDialog
        title="Delete webhook?"
        open={target !== null}
        onClose={() => setTarget(null)}
        confirmLabel="Delete"
        onConfirm={async () => {
          if (!target) return;
          await api("DELETE", `/v1/channels/${seg(target.id)}`);
          channels.reload();
        }}
      >
        <p>
          Delete <strong>{target?.name}</strong>? Events stop going to <code>{target?.url}</code>.
        </p>
      </ConfirmDialog>
    </Page>
  );
}
