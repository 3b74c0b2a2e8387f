/**
 * A build's log, followed: polls `/v1/builds/ID/logs?offset=N` every second and appends what
 * is new, until the build is ready or failed and the log is read to its end.
 */
import type { BuildLogEntryView, BuildLogsView, BuildStatus } from "@wrenn/api";
import { useEffect, useState } from "preact/hooks";
import { api, seg } from "../../api/client.js";

const PAGE = 1000;
const POLL_MS = 1000;

export interface BuildLog {
  entries: BuildLogEntryView[];
  /** The status the latest poll saw; null before the first answer. */
  status: BuildStatus | null;
  /** True once the build finished and its whole log is here. */
  done: boolean;
  error: Error | null;
}

export function useBuildLog(buildId: string): BuildLog {
  const [log, setLog] = useState<BuildLog>({ entries: [], status: null, done: false, error: null });
  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let offset = 0;
    const poll = async (): Promise<void> => {
      let page: BuildLogsView;
      try {
        page = await api<BuildLogsView>("GET", `/v1/builds/${seg(buildId)}/logs`, {
          query: { offset, limit: PAGE },
          signal: ctl.signal,
        });
      } catch (err) {
        if (ctl.signal.aborted) return;
        // Keep polling through a blip (a restart of the control plane); say so meanwhile.
        setLog((l) => ({ ...l, error: err as Error }));
        timer = setTimeout(poll, POLL_MS * 3);
        return;
      }
      if (ctl.signal.aborted) return;
      offset = page.next_offset;
      const finished = page.status === "ready" || page.status === "error";
      const more = page.entries.length === PAGE;
      setLog((l) => ({
        entries: page.entries.length ? [...l.entries, ...page.entries] : l.entries,
        status: page.status,
        done: finished && !more,
        error: null,
      }));
      if (more) void poll();
      else if (!finished) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [buildId]);
  return log;
}
