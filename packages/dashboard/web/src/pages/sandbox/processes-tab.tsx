/** Processes started through the API (commands, background processes, terminals), and killing one. */
import type { ProcessView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";
import { useAction, useApi } from "../../api/use-api.js";
import { type Column, DataTable } from "../../components/data-table.js";
import { Dialog } from "../../components/dialog.js";
import { ErrorNote } from "../../components/error-note.js";

const commandLine = (p: ProcessView) => [p.cmd, ...p.args].join(" ");

export function ProcessesTab({ sandboxId }: { sandboxId: string }) {
  const base = `/v1/sandboxes/${seg(sandboxId)}/processes`;
  const [killing, setKilling] = useState<ProcessView | null>(null);
  const list = useApi(
    (signal) => api<{ items: ProcessView[] }>("GET", base, { signal }).then((r) => r.items),
    [base],
  );
  const kill = useAction(async (p: ProcessView) => {
    await api("DELETE", `${base}/${p.pid}`, { query: { signal: "SIGKILL" } });
    setKilling(null);
    list.reload();
  });
  const close = () => {
    kill.clear();
    setKilling(null);
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
      <Dialog title="Kill process?" open={killing !== null} onClose={close}>
        <p>
          Process {killing?.pid} (<code>{killing ? commandLine(killing) : ""}</code>) gets SIGKILL.
        </p>
        <ErrorNote error={kill.error} />
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button
            type="button"
            class="danger"
            onClick={() => killing && kill.run(killing)}
            disabled={kill.busy}
          >
            {kill.busy ? "Killing…" : "Kill"}
          </button>
        </div>
      </Dialog>
    </div>
  );
}
