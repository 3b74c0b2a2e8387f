/** Processes started through the API (commands, background processes, terminals), and killing one. */
import type { ProcessView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import { useApi } from "../../api/use-api.js";
import { ConfirmDialog } from "../../components/confirm-dialog.js";
import { type Column, DataTable } from "../../components/data-table.js";
import { ErrorNote } from "../../components/error-note.js";

const commandLine = (p: ProcessView) => [p.cmd, ...p.args].join(" ");

export function ProcessesTab({ sandboxId }: { sandboxId: string }) {
  const base = `/v1/sandboxes/${seg(sandboxId)}/processes`;
  const [killing, setKilling] = useState<ProcessView | null>(null);
  const list = useApi(
    (signal) => api<{ items: ProcessView[] }>("GET", base, { signal }).then((r) => r.items),
    [base],
  );
  const kill = async () => {
    if (!killing) return;
    await api("DELETE", `${base}/${killing.pid}`, { query: { signal: "SIGKILL" } });
    list.reload();
  };
  const columns: Column<ProcessView>[] = [
    { label: "PID", render: (p) => p.pid, numeric: true },
    { label: "Command", render: (p) => <code>{commandLine(p)}</code> },
    { label: "Tag", render: (p) => p.tag || "–", wide: true },
    { label: "Working directory", render: (p) => <span class="mono">{p.cwd || "–"}</span>, wide: true },
    {
      label: "Actions",
      render: (p) => (
        <button type="button" class="danger" onClick={() => setKilling(p)}>
          Kill
        </button>
      ),
    },
  ];
  return (
    <div>
      <div class="toolbar">
        <button type="button" onClick={list.reload} disabled={list.loading}>
          Refresh
        </button>
      </div>
      <ErrorNote error={list.error} />
      {list.data ? (
        <DataTable
          rows={list.data}
          columns={columns}
          rowKey={(p) => String(p.pid)}
          caption="Processes"
          empty="No processes started through the API are running."
        />
      ) : (
        list.loading && <p class="loading">Loading processes…</p>
      )}
      <ConfirmDialog
        title="Kill process?"
        open={killing !== null}
        onClose={() => setKilling(null)}
        confirmLabel="Kill"
        onConfirm={kill}
      >
        <p>
          Process {killing?.pid} (<code>{killing ? commandLine(killing) : ""}</code>) gets SIGKILL.
        </p>
      </ConfirmDialog>
    </div>
  );
}
