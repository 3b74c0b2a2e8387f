/** The hosts sandboxes run on (the platform's admin team sees them all): state, capacity, load. */
import type { HostView } from "@wrenn/api";
import { useEffect } from "preact/hooks";
import { api } from "../api/client.js";
import { useTeamEvents } from "../api/events.js";
import { useApi } from "../api/use-api.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatBytes, formatRelative } from "../format.js";
import type { PageProps } from "../routes.js";

const MiB = 1024 * 1024;

type Resources = HostView["capacity"];

/** "3 / 8 vCPU · 2.0 / 16 GiB": what is given to sandboxes out of what the host has. */
function load(used: Resources, cap: Resources): string {
  return `${used.vcpus} / ${cap.vcpus} vCPU · ${formatBytes(used.memory_mb * MiB)} / ${formatBytes(cap.memory_mb * MiB)}`;
}

const columns: Column<HostView>[] = [
  {
    label: "Name",
    render: (h) => (
      <span>
        {h.name}
        {h.shared && <span class="field-hint"> (shared)</span>}
        <br />
        <code class="field-hint">{h.id}</code>
      </span>
    ),
  },
  { label: "State", render: (h) => <StateBadge state={h.state} /> },
  { label: "Address", render: (h) => (h.url ? <code>{h.url}</code> : "–"), wide: true },
  {
    label: "Runtime",
    render: (h) => [h.vmm, h.accel, h.version && `v${h.version}`].filter(Boolean).join(" · ") || "–",
    wide: true,
  },
  { label: "Allocated / capacity", render: (h) => load(h.allocated, h.capacity) },
  { label: "Disk", render: (h) => formatBytes(h.capacity.disk_mb * MiB), wide: true, numeric: true },
  { label: "Sandboxes", render: (h) => h.sandbox_count, numeric: true },
  { label: "Images", render: (h) => (h.images.length ? h.images.join(", ") : "–"), wide: true },
  { label: "Last heartbeat", render: (h) => formatRelative(h.last_seen_at) },
];

export function HostsPage(_props: PageProps) {
  const hosts = useApi(
    async (signal) => (await api<{ items: HostView[] }>("GET", "/v1/hosts", { signal })).items,
    [],
  );
  useTeamEvents(["host."], () => hosts.reload());
  useEffect(() => {
    const timer = setInterval(hosts.reload, 15_000);
    return () => clearInterval(timer);
  }, []);
  return (
    <Page title="Hosts">
      <ErrorNote error={hosts.error} />
      {hosts.data ? (
        <DataTable
          rows={hosts.data}
          columns={columns}
          rowKey={(h) => h.id}
          caption="Hosts"
          empty="No hosts registered."
        />
      ) : (
        hosts.loading && <p class="loading">Loading hosts…</p>
      )}
    </Page>
  );
}
