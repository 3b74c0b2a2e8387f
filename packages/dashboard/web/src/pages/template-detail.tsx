/** One template (`/#/templates/NAME`): its facts, its builds, a new build of it, deletion. */
import type { BuildView, TemplateView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { ApiError, api, seg } from "../api/client.js";
import { useTeamEvents } from "../api/events.js";
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
import { NewBuildDialog } from "./templates/new-build-dialog.js";
import { templateResources } from "./templates/template-facts.js";

const buildColumns: Column<BuildView>[] = [
  { label: "Build", render: (b) => <a href={href(`/builds/${seg(b.id)}`)}>{b.id}</a> },
  { label: "Status", render: (b) => <StateBadge state={b.status} /> },
  { label: "Tags", render: (b) => (b.tags.length ? b.tags.join(", ") : "–") },
  { label: "Steps", render: (b) => `${b.steps_total} (${b.steps_cached} cached)`, wide: true },
  { label: "Started", render: (b) => formatRelative(b.created_at) },
  { label: "Finished", render: (b) => formatRelative(b.finished_at), wide: true },
];

function Facts({ t }: { t: TemplateView }) {
  return (
    <dl class="facts">
      <dt>ID</dt>
      <dd>
        <code>{t.id}</code>
      </dd>
      <dt>Kind</dt>
      <dd>{t.kind === "base" ? "image" : t.kind}</dd>
      {t.kind !== "base" && (
        <>
          <dt>Based on image</dt>
          <dd>{t.image ?? "–"}</dd>
        </>
      )}
      {t.source_sandbox_id && (
        <>
          <dt>From sandbox</dt>
          <dd>
            <code>{t.source_sandbox_id}</code>
          </dd>
        </>
      )}
      {t.kind === "built" && (
        <>
          <dt>Latest build</dt>
          <dd>
            {t.build_status ? <StateBadge state={t.build_status} /> : "none"}{" "}
            {t.build_id && <a href={href(`/builds/${seg(t.build_id)}`)}>{t.build_id}</a>}
          </dd>
          <dt>Tags</dt>
          <dd>{t.tags.length ? t.tags.join(", ") : "–"}</dd>
        </>
      )}
      <dt>Resources</dt>
      <dd>{templateResources(t)}</dd>
      <dt>Host</dt>
      <dd>{t.host_id ?? "any"}</dd>
      <dt>Created</dt>
      <dd>{formatTime(t.created_at)}</dd>
    </dl>
  );
}

/** A template by name; a host's image is not one the API gets by name, so it comes from the list. */
async function loadTemplate(name: string, signal: AbortSignal): Promise<TemplateView> {
  try {
    return await api<TemplateView>("GET", `/v1/templates/${seg(name)}`, { signal });
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== "not_found") throw err;
    const all = await api<{ items: TemplateView[] }>("GET", "/v1/templates", { signal });
    const image = all.items.find((t) => t.kind === "base" && t.name === name);
    if (!image) throw err;
    return image;
  }
}

export function TemplateDetailPage({ params }: PageProps) {
  const name = params.name ?? "";
  const [building, setBuilding] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const template = useApi((signal) => loadTemplate(name, signal), [name]);
  const t = template.data;
  const builds = useApi(
    async (signal) =>
      t?.kind === "built"
        ? (await api<{ items: BuildView[] }>("GET", `/v1/templates/${seg(name)}/builds`, { signal })).items
        : [],
    [name, t?.kind, t?.build_status],
  );
  useTeamEvents(["template."], () => template.reload());
  // A built template is deleted here; a snapshot through its own route; an image is the hosts'.
  const deletePath =
    t?.kind === "built"
      ? `/v1/templates/${seg(name)}`
      : t?.kind === "snapshot"
        ? `/v1/snapshots/${seg(name)}`
        : null;
  return (
    <Page
      title={name}
      actions={
        t && (
          <>
            {t.kind !== "snapshot" && (
              <button type="button" class="primary" onClick={() => setBuilding(true)}>
                {t.kind === "built" ? "New build" : "Build from this image"}
              </button>
            )}
            {deletePath && (
              <button type="button" class="danger" onClick={() => setDeleting(true)}>
                Delete
              </button>
            )}
          </>
        )
      }
    >
      <p>
        <a href={href("/templates")}>← Templates</a>
      </p>
      <ErrorNote error={template.error} />
      {!t && template.loading && <p class="loading">Loading template…</p>}
      {t && (
        <>
          <Panel title="Template">
            <Facts t={t} />
          </Panel>
          {t.kind === "built" && (
            <Panel title="Builds">
              <ErrorNote error={builds.error} />
              {builds.data ? (
                <DataTable
                  rows={builds.data}
                  columns={buildColumns}
                  rowKey={(b) => b.id}
                  caption={`Builds of ${name}`}
                  empty="No builds yet."
                />
              ) : (
                <p class="loading">Loading builds…</p>
              )}
            </Panel>
          )}
          <NewBuildDialog
            open={building}
            onClose={() => setBuilding(false)}
            initialName={t.kind === "built" ? t.name : ""}
            fromImage={t.kind === "base" ? t.name : (t.image ?? "base")}
          />
          {deletePath && (
            <ConfirmDialog
              title={`Delete ${t.kind === "built" ? "template" : "snapshot"}?`}
              open={deleting}
              onClose={() => setDeleting(false)}
              confirmLabel="Delete"
              onConfirm={async () => {
                await api("DELETE", deletePath);
                navigate(t.kind === "built" ? "/templates" : "/snapshots");
              }}
            >
              <p>
                Delete <strong>{name}</strong>? Sandboxes already made from it keep running; new ones can no
                longer start from it.
              </p>
            </ConfirmDialog>
          )}
        </>
      )}
    </Page>
  );
}
