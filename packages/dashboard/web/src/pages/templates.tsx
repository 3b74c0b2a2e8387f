/** The team's templates: the hosts' images, snapshots and built templates, with "New build". */
import type { TemplateView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useTeamEvents } from "../api/events.js";
import { useApi } from "../api/use-api.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Page } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatRelative } from "../format.js";
import { href } from "../router.js";
import type { PageProps } from "../routes.js";
import { NewBuildDialog } from "./templates/new-build-dialog.js";
import { templateResources } from "./templates/template-facts.js";

const KIND_LABEL: Record<TemplateView["kind"], string> = {
  base: "image",
  snapshot: "snapshot",
  built: "built",
};

const columns: Column<TemplateView>[] = [
  { label: "Name", render: (t) => <a href={href(`/templates/${seg(t.name)}`)}>{t.name}</a> },
  { label: "Kind", render: (t) => KIND_LABEL[t.kind] },
  { label: "Build", render: (t) => (t.build_status ? <StateBadge state={t.build_status} /> : "–") },
  { label: "Tags", render: (t) => (t.tags.length ? t.tags.join(", ") : "–"), wide: true },
  { label: "Based on", render: (t) => (t.kind === "base" ? "–" : (t.image ?? "–")), wide: true },
  { label: "Resources", render: templateResources, wide: true },
  { label: "Created", render: (t) => formatRelative(t.created_at) },
];

export function TemplatesPage(_props: PageProps) {
  const [creating, setCreating] = useState(false);
  const list = useApi((signal) => api<{ items: TemplateView[] }>("GET", "/v1/templates", { signal }), []);
  useTeamEvents(["template.", "snapshot."], () => list.reload());
  return (
    <Page
      title="Templates"
      actions={
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          New build
        </button>
      }
    >
      <ErrorNote error={list.error} />
      {list.data ? (
        <DataTable
          rows={list.data.items}
          columns={columns}
          rowKey={(t) => t.id}
          caption="Templates"
          empty="No templates yet."
        />
      ) : (
        list.loading && <p class="loading">Loading templates…</p>
      )}
      <NewBuildDialog open={creating} onClose={() => setCreating(false)} />
    </Page>
  );
}
