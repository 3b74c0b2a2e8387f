/** The team's audit log: who did what to which resource, paged, filtered by action. */
import type { AuditLogView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../api/client.js";
import { useAction, useApi } from "../api/use-api.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Field } from "../components/field.js";
import { Page } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatTime } from "../format.js";
import type { PageProps } from "../routes.js";

const PAGE = 100;

/** The actions the control plane records (a suggestion list: the filter takes any). */
const ACTIONS = [
  "api_key.create",
  "api_key.revoke",
  "auth.signin",
  "auth.signout",
  "auth.signup",
  "channel.create",
  "channel.delete",
  "host.create",
  "host.delete",
  "host.register",
  "invitation.accept",
  "invitation.create",
  "invitation.revoke",
  "sandbox.create",
  "sandbox.file.mkdir",
  "sandbox.file.remove",
  "sandbox.file.write",
  "sandbox.fork",
  "sandbox.pause",
  "sandbox.process.kill",
  "sandbox.resume",
  "sandbox.set_timeout",
  "sandbox.update_network",
  "snapshot.create",
  "snapshot.delete",
  "team.create",
  "team.member.add",
  "team.member.remove",
  "team.member.role",
  "team.update",
  "user.create",
  "user.password_reset",
] as const;

interface AuditPage {
  items: AuditLogView[];
  next_cursor: string | null;
}

const columns: Column<AuditLogView>[] = [
  { label: "Time", render: (e) => formatTime(e.created_at) },
  { label: "Action", render: (e) => <code>{e.action}</code> },
  {
    label: "Actor",
    render: (e) => (
      <span>
        {e.actor_type}
        {e.actor_id && (
          <>
            {" "}
            <code>{e.actor_id}</code>
          </>
        )}
      </span>
    ),
    wide: true,
  },
  {
    label: "Resource",
    render: (e) => (
      <span>
        {e.resource_type}
        {e.resource_id && (
          <>
            {" "}
            <code>{e.resource_id}</code>
          </>
        )}
      </span>
    ),
  },
  {
    label: "Result",
    render: (e) => (
      <span>
        <StateBadge state={e.result} />
        {e.error_code && (
          <>
            {" "}
            <code>{e.error_code}</code>
          </>
        )}
      </span>
    ),
  },
  {
    label: "Details",
    render: (e) =>
      Object.keys(e.details).length ? <code class="details">{JSON.stringify(e.details)}</code> : "–",
    wide: true,
  },
];

export function AuditPage({ query }: PageProps) {
  const [draft, setDraft] = useState(query.get("action") ?? "");
  const [action, setAction] = useState(draft);
  const [more, setMore] = useState<AuditLogView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const first = useApi(
    async (signal) => {
      const page = await api<AuditPage>("GET", "/v1/audit-logs", {
        query: { limit: PAGE, action: action || undefined, order: "desc" },
        signal,
      });
      setMore([]);
      setCursor(page.next_cursor);
      return page.items;
    },
    [action],
  );
  const loadMore = useAction(async () => {
    if (!cursor) return;
    const page = await api<AuditPage>("GET", "/v1/audit-logs", {
      query: { limit: PAGE, action: action || undefined, order: "desc", cursor },
    });
    setMore((m) => [...m, ...page.items]);
    setCursor(page.next_cursor);
  });
  const rows = [...(first.data ?? []), ...more];
  return (
    <Page title="Audit log">
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          if (draft === action) first.reload();
          else setAction(draft);
        }}
      >
        <Field label="Action">
          <input
            type="search"
            list="audit-actions"
            placeholder="all actions"
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value.trim())}
          />
        </Field>
        <datalist id="audit-actions">
          {ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <button type="submit">Filter</button>
        {action && (
          <button
            type="button"
            onClick={() => {
              setDraft("");
              setAction("");
            }}
          >
            Show all
          </button>
        )}
      </form>
      <p class="field-hint">Newest first; "Load more" reads further back.</p>
      <ErrorNote error={first.error} />
      {first.data ? (
        <DataTable
          rows={rows}
          columns={columns}
          rowKey={(e) => e.id}
          caption="Audit log entries"
          empty={action ? `No ${action} entries.` : "No entries yet."}
        />
      ) : (
        first.loading && <p class="loading">Loading the audit log…</p>
      )}
      <ErrorNote error={loadMore.error} />
      {cursor && (
        <p>
          <button type="button" onClick={() => loadMore.run()} disabled={loadMore.busy}>
            {loadMore.busy ? "Loading…" : "Load more"}
          </button>
        </p>
      )}
    </Page>
  );
}
