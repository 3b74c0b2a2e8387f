/** One webhook channel (`/#/channels/ID`): its settings and its delivery history. */
import type { ChannelView, DeliveryView } from "@wrenn/api";
import { useEffect, useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useApi } from "../api/use-api.js";
import { ConfirmDialog } from "../components/confirm-dialog.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page, Panel } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatRelative, formatTime } from "../format.js";
import { href, navigate } from "../router.js";
import type { PageProps } from "../routes.js";

const REFRESH_MS = 10_000;

const columns: Column<DeliveryView>[] = [
  { label: "Time", render: (d) => formatTime(d.created_at) },
  { label: "Event", render: (d) => <code>{d.event_type}</code> },
  { label: "Status", render: (d) => <StateBadge state={d.status} /> },
  { label: "Attempts", render: (d) => d.attempts, numeric: true },
  { label: "Delivered", render: (d) => formatRelative(d.delivered_at), wide: true },
  { label: "Last error", render: (d) => d.last_error ?? "–", wide: true },
  { label: "Event ID", render: (d) => <code>{d.event_id}</code>, wide: true },
];

export function ChannelDetailPage({ params }: PageProps) {
  const id = params.id ?? "";
  const [deleting, setDeleting] = useState(false);
  const channel = useApi((signal) => api<ChannelView>("GET", `/v1/channels/${seg(id)}`, { signal }), [id]);
  const deliveries = useApi(
    async (signal) =>
      (await api<{ items: DeliveryView[] }>("GET", `/v1/channels/${seg(id)}/deliveries`, { signal })).items,
    [id],
  );
  useEffect(() => {
    const timer = setInterval(deliveries.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const c = channel.data;
  return (
    <Page
      title={c?.name ?? id}
      actions={
        c && (
          <button type="button" class="danger" onClick={() => setDeleting(true)}>
            Delete
          </button>
        )
      }
    >
      <p>
        <a href={href("/channels")}>← Webhooks</a>
      </p>
      <ErrorNote error={channel.error} />
      {!c && channel.loading && <p class="loading">Loading webhook…</p>}
      {c && (
        <Panel title="Webhook">
          <dl class="facts">
            <dt>ID</dt>
            <dd>
              <code>{c.id}</code>
            </dd>
            <dt>URL</dt>
            <dd>
              <code>{c.url}</code>
            </dd>
            <dt>Events</dt>
            <dd>{c.events.length ? c.events.join(", ") : "all"}</dd>
            <dt>Enabled</dt>
            <dd>{c.enabled ? "yes" : "no"}</dd>
            <dt>Created</dt>
            <dd>{formatTime(c.created_at)}</dd>
          </dl>
        </Panel>
      )}
      <Panel title="Deliveries">
        <div class="toolbar">
          <span class="field-hint">Newest first; refreshed every 10 s.</span>
          <button type="button" onClick={deliveries.reload} disabled={deliveries.loading}>
            Refresh
          </button>
        </div>
        <ErrorNote error={deliveries.error} />
        {deliveries.data ? (
          <DataTable
            rows={deliveries.data}
            columns={columns}
            rowKey={(d) => d.id}
            caption="Deliveries"
            empty="Nothing delivered yet."
          />
        ) : (
          deliveries.loading && <p class="loading">Loading deliveries…</p>
        )}
      </Panel>
      <ConfirmDialog
        title="Delete webhook?"
        open={deleting}
        onClose={() => setDeleting(false)}
        confirmLabel="Delete"
        onConfirm={async () => {
          await api("DELETE", `/v1/channels/${seg(id)}`);
          navigate("/channels");
        }}
      >
        <p>
          Delete <strong>{c?.name}</strong>? Events stop going to <code>{c?.url}</code>.
        </p>
      </ConfirmDialog>
    </Page>
  );
}
