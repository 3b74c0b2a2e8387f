/** The team's API keys: create (the key shown once), revoke. Owners and admins only. */
import type { ApiKeyView, CreatedApiKeyView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useAction, useApi } from "../api/use-api.js";
import { ConfirmDialog } from "../components/confirm-dialog.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { Dialog } from "../components/dialog.js";
import { DialogDone, DialogForm } from "../components/dialog-form.js";
import { ErrorNote } from "../components/error-note.js";
import { Field } from "../components/field.js";
import { OnceSecret } from "../components/once-secret.js";
import { Page } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatRelative } from "../format.js";
import type { PageProps } from "../routes.js";
import { canManage, useSession } from "../session.js";

function NewKeyDialog({
  open,
  onClose,
  onCreated,
}: {
  open: boolean;
  onClose: () => void;
  onCreated: () => void;
}) {
  const [name, setName] = useState("");
  const [created, setCreated] = useState<CreatedApiKeyView | null>(null);
  const create = useAction(async () => {
    setCreated(await api<CreatedApiKeyView>("POST", "/v1/api-keys", { body: { name } }));
    onCreated();
  });
  const close = () => {
    setName("");
    setCreated(null);
    create.clear();
    onClose();
  };
  return (
    <Dialog title="New key" open={open} onClose={close}>
      {created ? (
        <DialogDone onDone={close}>
          <OnceSecret label={`API key "${created.name}"`} value={created.key} />
        </DialogDone>
      ) : (
        <DialogForm action={create} submitLabel="Create" onCancel={close}>
          <Field label="Name">
            <input
              type="text"
              required
              maxLength={128}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </Field>
        </DialogForm>
      )}
    </Dialog>
  );
}

export function ApiKeysPage(_props: PageProps) {
  const { session } = useSession();
  const manager = canManage(session);
  const [creating, setCreating] = useState(false);
  const [target, setTarget] = useState<ApiKeyView | null>(null);
  const keys = useApi(
    async (signal) =>
      manager ? (await api<{ items: ApiKeyView[] }>("GET", "/v1/api-keys", { signal })).items : [],
    [manager],
  );
  const columns: Column<ApiKeyView>[] = [
    { label: "Name", render: (k) => k.name },
    { label: "Key", render: (k) => <code>{k.prefix}…</code> },
    { label: "Created", render: (k) => formatRelative(k.created_at), wide: true },
    { label: "Last used", render: (k) => (k.last_used_at ? formatRelative(k.last_used_at) : "never") },
    {
      label: "Status",
      render: (k) => <StateBadge state={k.revoked_at ? "revoked" : "active"} />,
    },
    {
      label: "Actions",
      render: (k) =>
        k.revoked_at ? (
          formatRelative(k.revoked_at)
        ) : (
          <button type="button" class="danger" onClick={() => setTarget(k)}>
            Revoke
          </button>
        ),
    },
  ];
  return (
    <Page
      title="API keys"
      actions={
        manager && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New key
          </button>
        )
      }
    >
      <p class="field-hint">
        Keys act for this team in the SDK, the CLI and the API (as <code>X-API-Key</code>, or as an E2B key).
      </p>
      {!manager && <p class="empty">Only the team's owners and admins see and manage its API keys.</p>}
      <ErrorNote error={keys.error} />
      {keys.data
        ? manager && (
            <DataTable
              rows={keys.data}
              columns={columns}
              rowKey={(k) => k.id}
              caption="API keys"
              empty="No API keys yet."
            />
          )
        : keys.loading && <p class="loading">Loading keys…</p>}
      <NewKeyDialog open={creating} onClose={() => setCreating(false)} onCreated={keys.reload} />
      <ConfirmDialog
        title="Revoke key?"
        open={target !== null}
        onClose={() => setTarget(null)}
        confirmLabel="Revoke"
        onConfirm={async () => {
          if (!target) return;
          await api("DELETE", `/v1/api-keys/${seg(target.id)}`);
          keys.reload();
        }}
      >
        <p>
          Revoke <strong>{target?.name}</strong> (<code>{target?.prefix}…</code>)? Whatever uses it stops
          working at once.
        </p>
      </ConfirmDialog>
    </Page>
  );
}
