/** One template build (`/#/builds/ID`): its status, facts, failure and its log as it is written. */
import type { BuildLogEntryView, BuildView } from "@wrenn/api";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { api, seg } from "../api/client.js";
import { useApi } from "../api/use-api.js";
import { ErrorNote } from "../components/error-note.js";
import { Page, Panel } from "../components/page.js";
import { StateBadge } from "../components/state-badge.js";
import { formatTime } from "../format.js";
import { href } from "../router.js";
import type { PageProps } from "../routes.js";
import { useBuildLog } from "./templates/use-build-log.js";

const clock = (iso: string) => new Date(iso).toLocaleTimeString(undefined, { hour12: false });

function logLine(e: BuildLogEntryView): string {
  const step = e.step ? `[${e.step}] ` : "";
  return `${clock(e.timestamp)} ${step}${e.message}\n`;
}

/** The log, kept scrolled to its end unless the reader scrolled up to read. */
function LogView({ entries, done }: { entries: BuildLogEntryView[]; done: boolean }) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [entries.length]);
  return (
    <pre
      ref={ref}
      class="log"
      role="log"
      data-testid="build-log"
      aria-live="polite"
      aria-busy={!done}
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus for keyboard scrolling
      tabIndex={0}
      aria-label="Build log"
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {entries.map((e) =>
        e.level === "error" || e.level === "warn" ? (
          <span key={e.offset} class={`log-${e.level}`}>
            {logLine(e)}
          </span>
        ) : (
          logLine(e)
        ),
      )}
    </pre>
  );
}

export function BuildDetailPage({ params }: PageProps) {
  const id = params.id ?? "";
  const build = useApi((signal) => api<BuildView>("GET", `/v1/builds/${seg(id)}`, { signal }), [id]);
  const log = useBuildLog(id);
  const b = build.data;
  // The build's record (finish time, error) is read again once the log says it changed.
  useEffect(() => {
    if (b && log.status && log.status !== b.status) build.reload();
  }, [log.status, b?.status]);
  const status = log.status ?? b?.status;
  return (
    <Page title={`Build ${id}`} actions={status && <StateBadge state={status} />}>
      {b && (
        <p>
          <a href={href(`/templates/${seg(b.template)}`)}>← {b.template}</a>
        </p>
      )}
      <ErrorNote error={build.error} />
      {!b && build.loading && <p class="loading">Loading build…</p>}
      {b?.error && (
        <div class="error-note" role="alert">
          <strong>Failed{b.error.step ? ` at step ${b.error.step}` : ""}:</strong> {b.error.message}
        </div>
      )}
      {b && (
        <Panel title="Build">
          <dl class="facts">
            <dt>Template</dt>
            <dd>{b.template}</dd>
            <dt>Tags</dt>
            <dd>{b.tags.length ? b.tags.join(", ") : "–"}</dd>
            <dt>Steps</dt>
            <dd>
              {b.steps_total} ({b.steps_cached} from the cache)
            </dd>
            <dt>Resources</dt>
            <dd>
              {b.vcpus} vCPU · {b.memory_mb} MiB · {b.disk_mb} MiB disk
            </dd>
            <dt>Host</dt>
            <dd>{b.host_id ?? "–"}</dd>
            <dt>Started</dt>
            <dd>{formatTime(b.created_at)}</dd>
            <dt>Finished</dt>
            <dd>{formatTime(b.finished_at)}</dd>
          </dl>
        </Panel>
      )}
      <Panel title="Log">
        <ErrorNote error={log.error} />
        <LogView entries={log.entries} done={log.done} />
        {!log.done && <p class="loading">{log.status ? "Following the log…" : "Loading the log…"}</p>}
      </Panel>
    </Page>
  );
}
