/** The team's snapshots (frozen sandboxes that new sandboxes start from); deletion. */
import type { TemplateView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useTeamEvents } from "../api/events.js";
import { useApi } from "../api/use-api.js";
import { ConfirmDialog } from "../components/confirm-dialog.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Field } from "../components/field.js";
import { Page } from "../components/page.js";
import { formatRelative } from "../format.js";
import { href } from "../router.js";
import type { PageProps } from "../routes.js";
import { templateResources } from "./templates/template-facts.js";

export function SnapshotsPage(_props: PageProps) {
  const [target, setTarget] = useState<TemplateView | null>(null);
  const [force, setForce] = useState(false);
  const list = useApi((signal) => api<{ items: TemplateView[] }>("GET", "/v1/snapshots", { signal }), []);
  useTeamEvents(["snapshot."], () => list.reload());
  const columns: Column<TemplateView>[] = [
    { label: "Name", render: (s) => <a href={href(`/templates/${seg(s.name)}`)}>{s.name}</a> },
    {
      label: "From sandbox",
      render: (s) =>
        s.source_sandbox_id ? (
          <a href={href(`/sandboxes/${seg(s.source_sandbox_id)}`)}>{s.source_sandbox_id}</a>
        ) : (
          "–"
        ),
      wide: true,
    },
    { label: "Image", render: (s) => s.image ?? "–", wide: true },
    { label: "Resources", render: templateResources, wide: true },
    { label: "Created", render: (s) => formatRelative(s.created_at) },
    {
      label: "Actions",
      render: (s) => (
        <button
          type="button"
          class="danger"
          onClick={() => {
            setForce(false);
            setTarget(s);
          }}
        >
          Delete
        </button>
      ),
    },
  ];
  return (
    <Page title="Snapshots">
      <p class="field-hint">Take a snapshot from a running or paused sandbox's page.</p>
      <ErrorNote error={list.error} />
      {list.data ? (
        <DataTable
          rows={list.data.items}
          columns={columns}
          rowKey={(s) => s.name}
          caption="Snapshots"
          empty="No snapshots yet."
        />
      ) : (
        list.loading && <p class="loading">Loading snapshots…</p>
      )}
      <ConfirmDialog
        title="Delete snapshot?"
        open={target !== null}
        onClose={() => setTarget(null)}
        confirmLabel="Delete"
        onConfirm={async () => {
          if (!target) return;
          await api("DELETE", `/v1/snapshots/${seg(target.name)}`, { query: { force: force || undefined } });
          list.reload();
        }}
      >
        <p>
          Delete the snapshot <strong>{target?.name}</strong>? New sandboxes can no longer start from it.
        </p>
        <Field label="Delete even while sandboxes depend on it">
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} />
        </Field>
      </ConfirmDialog>
    </Page>
  );
}
