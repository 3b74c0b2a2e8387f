/** One sandbox: its facts and actions, then tabs for metrics, a terminal, files and processes. */
import type { SandboxView } from "@wrenn/api";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { type TeamEvent, useTeamEvents } from "../api/events.js";
import { useApi } from "../api/use-api.js";
import { ErrorNote } from "../components/error-note.js";
import { Page, Panel } from "../components/page.js";
import { Tabs } from "../components/tabs.js";
import { navigate } from "../router.js";
import type { PageProps } from "../routes.js";
import { SandboxFacts } from "./sandbox/facts.js";
import { FilesTab } from "./sandbox/files-tab.js";
import { ForkDialog } from "./sandbox/fork-dialog.js";
import { OverviewTab } from "./sandbox/overview-tab.js";
import { ProcessesTab } from "./sandbox/processes-tab.js";
import { SandboxActions } from "./sandbox/sandbox-actions.js";
import { SnapshotDialog } from "./sandbox/snapshot-dialog.js";
import { TerminalTab } from "./sandbox/terminal-tab.js";
import { TimeoutDialog } from "./sandbox/timeout-dialog.js";
import { REFRESH_MS, useInterval } from "./sandbox/use-interval.js";

const TABS = [
  { id: "overview", label: "Overview" },
  { id: "terminal", label: "Terminal" },
  { id: "files", label: "Files" },
  { id: "processes", label: "Processes" },
] as const;
type TabId = (typeof TABS)[number]["id"];

export function SandboxDetailPage({ params, query }: PageProps) {
  const id = params.id ?? "";
  const [tab, setTab] = useState<TabId>(() => {
    const asked = query.get("tab");
    return TABS.some((t) => t.id === asked) ? (asked as TabId) : "overview";
  });
  // The terminal stays mounted once opened, so switching tabs keeps its shell.
  const [terminalOpened, setTerminalOpened] = useState(tab === "terminal");
  const [settingTimeout, setSettingTimeout] = useState(false);
  const [dialog, setDialog] = useState<"snapshot" | "fork" | null>(null);
  const [override, setOverride] = useState<SandboxView | null>(null);
  const loaded = useApi((signal) => api<SandboxView>("GET", `/v1/sandboxes/${seg(id)}`, { signal }), [id]);
  const onEvent = useCallback(
    (event: TeamEvent | null) => {
      if (!event || event.data.sandbox_id === id) loaded.reload();
    },
    [id, loaded.reload],
  );
  useTeamEvents(["sandbox."], onEvent);
  useInterval(loaded.reload, REFRESH_MS);

  // An action's answer shows at once, until the next load (each action also asks for one) lands.
  useEffect(() => setOverride(null), [loaded.data]);
  const sandbox = override ?? loaded.data;
  const changed = (s: SandboxView) => {
    setOverride(s);
    loaded.reload();
  };
  const select = (next: string) => {
    setTab(next as TabId);
    if (next === "terminal") setTerminalOpened(true);
  };
  const running = sandbox?.state === "running";
  // What the API allows: snapshots of running or paused sandboxes, forks of running ones.
  const live = running || sandbox?.state === "paused";
  const needsRunning = (what: string) => (
    <p class="empty">
      The sandbox is {sandbox?.state ?? "not running"}; {what} needs it running
      {sandbox?.state === "paused" ? " (Resume it)" : ""}.
    </p>
  );

  return (
    <Page
      title={id}
      actions={
        sandbox && (
          <SandboxActions sandbox={sandbox} onChanged={changed} onKilled={() => navigate("/sandboxes")}>
            {live && (
              <button type="button" onClick={() => setSettingTimeout(true)}>
                Set timeout
              </button>
            )}
            {live && (
              <button type="button" onClick={() => setDialog("snapshot")}>
                Snapshot
              </button>
            )}
            {running && (
              <button type="button" onClick={() => setDialog("fork")}>
                Fork
              </button>
            )}
          </SandboxActions>
        )
      }
    >
      <ErrorNote error={loaded.error} />
      {!sandbox && loaded.loading && <p class="loading">Loading sandbox…</p>}
      {sandbox && (
        <>
          <Panel title="Details">
            <SandboxFacts sandbox={sandbox} />
          </Panel>
          <Tabs tabs={TABS} active={tab} onSelect={select}>
            {tab === "overview" && <OverviewTab sandboxId={id} running={running} />}
            {terminalOpened && (
              <div hidden={tab !== "terminal"}>
                {running ? (
                  <TerminalTab sandboxId={id} active={tab === "terminal"} />
                ) : (
                  needsRunning("the terminal")
                )}
              </div>
            )}
            {tab === "files" && (running ? <FilesTab sandboxId={id} /> : needsRunning("the file browser"))}
            {tab === "processes" &&
              (running ? <ProcessesTab sandboxId={id} /> : needsRunning("listing processes"))}
          </Tabs>
          <TimeoutDialog
            sandbox={sandbox}
            open={settingTimeout}
            onClose={() => setSettingTimeout(false)}
            onChanged={changed}
          />
          <SnapshotDialog sandbox={sandbox} open={dialog === "snapshot"} onClose={() => setDialog(null)} />
          <ForkDialog sandbox={sandbox} open={dialog === "fork"} onClose={() => setDialog(null)} />
        </>
      )}
    </Page>
  );
}
