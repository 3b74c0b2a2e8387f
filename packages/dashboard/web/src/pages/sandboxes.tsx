/** The team's sandboxes, live: team events and a 10 s refresh; create, pause, resume, kill. */
import type { SandboxView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../api/client.js";
import { useTeamEvents } from "../api/events.js";
import { useApi } from "../api/use-api.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatBytes, formatRelative, formatTime } from "../format.js";
import { href } from "../router.js";
import type { PageProps } from "../routes.js";
import { NewSandboxDialog } from "./sandbox/new-sandbox-dialog.js";
import { SandboxActions } from "./sandbox/sandbox-actions.js";
import { REFRESH_MS, useInterval } from "./sandbox/use-interval.js";

/** Every state but stopped: a destroyed sandbox leaves the list unless asked for. */
const LIVE_STATES = "pending,running,paused,error,missing";
const PAGE_SIZE = 200;
interface SandboxPage {
  items: SandboxView[];
  next_cursor: string | null;
}

export function SandboxesPage(_props: PageProps) {
  const [showStopped, setShowStopped] = useState(false);
  const [creating, setCreating] = useState(false);
  const list = useApi(
    (signal) =>
      api<SandboxPage>("GET", "/v1/sandboxes", {
        query: { limit: PAGE_SIZE, state: showStopped ? undefined : LIVE_STATES },
        signal,
      }),
    [showStopped],
  );
  useTeamEvents(["sandbox."], list.reload);
  useInterval(list.reload, REFRESH_MS);

  const columns: Column<SandboxView>[] = [
    {
      label: "ID",
      render: (s) => (
        <a class="mono" href={href(`/sandboxes/${encodeURIComponent(s.id)}`)}>
          {s.id}
        </a>
      ),
    },
    { label: "Template", render: (s) => s.template },
    { label: "State", render: (s) => <StateBadge state={s.state} /> },
    { label: "vCPUs", render: (s) => s.vcpus, numeric: true, wide: true },
    { label: "Memory", render: (s) => formatBytes(s.memory_mb * 1024 * 1024), numeric: true, wide: true },
    {
      label: "Created",
      render: (s) => <time title={formatTime(s.created_at)}>{formatRelative(s.created_at)}</time>,
      wide: true,
    },
    {
      label: "Expires",
      render: (s) =>
        s.expires_at ? <time title={formatTime(s.expires_at)}>{formatRelative(s.expires_at)}</time> : "–",
    },
    {
      label: "Actions",
      render: (s) => <SandboxActions sandbox={s} onChanged={list.reload} onKilled={list.reload} />,
    },
  ];

  return (
    <Page
      title="Sandboxes"
      actions={
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          New sandbox
        </button>
      }
    >
      <div class="toolbar">
        <label>
          <input
            type="checkbox"
            checked={showStopped}
            onChange={(e) => setShowStopped(e.currentTarget.checked)}
          />{" "}
          Show stopped
        </label>
      </div>
      <ErrorNote error={list.error} />
      {list.data ? (
        <>
          <DataTable
            rows={list.data.items}
            columns={columns}
            rowKey={(s) => s.id}
            caption="Sandboxes"
            empty={showStopped ? "No sandboxes yet." : "No live sandboxes. Create one with New sandbox."}
          />
          {list.data.next_cursor && (
            <p class="empty">Showing the first {PAGE_SIZE}; the CLI or API lists the rest.</p>
          )}
        </>
      ) : (
        list.loading && <p class="loading">Loading sandboxes…</p>
      )}
      <NewSandboxDialog open={creating} onClose={() => setCreating(false)} />
    </Page>
  );
}
