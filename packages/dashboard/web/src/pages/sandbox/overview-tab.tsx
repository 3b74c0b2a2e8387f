/** CPU, memory and disk over the last 15 minutes, from the control plane's sampled metrics. */
import type { SandboxMetricsSampleView } from "@wrenn/api";
import { api, seg } from "../../api/client.js";
import { useApi } from "../../api/use-api.js";
import { ErrorNote } from "../../components/error-note.js";
import { LineChart, type Point } from "../../components/line-chart.js";
import { formatBytes, formatPct } from "../../format.js";
import { REFRESH_MS, useInterval } from "./use-interval.js";

const WINDOW_SEC = 15 * 60;

const series = (
  samples: readonly SandboxMetricsSampleView[],
  pick: (s: SandboxMetricsSampleView) => number,
) => samples.map((s): Point => ({ t: new Date(s.timestamp).getTime(), v: pick(s) }));

export function OverviewTab({ sandboxId, running }: { sandboxId: string; running: boolean }) {
  const metrics = useApi(
    (signal) => {
      const end = Math.floor(Date.now() / 1000);
      return api<{ items: SandboxMetricsSampleView[] }>("GET", `/v1/sandboxes/${seg(sandboxId)}/metrics`, {
        query: { start: end - WINDOW_SEC, end },
        signal,
      }).then((r) => r.items);
    },
    [sandboxId],
  );
  useInterval(metrics.reload, REFRESH_MS, running);
  const samples = metrics.data ?? [];
  return (
    <div>
      <ErrorNote error={metrics.error} />
      {!metrics.data && metrics.loading && <p class="loading">Loading metrics…</p>}
      {metrics.data && (
        <div class="charts">
          <LineChart
            title="CPU"
            max={100}
            format={formatPct}
            series={[
              { label: "used", color: "var(--chart-1)", points: series(samples, (s) => s.cpu_used_pct) },
            ]}
          />
          <LineChart
            title="Memory"
            format={formatBytes}
            series={[
              { label: "used", color: "var(--chart-1)", points: series(samples, (s) => s.mem_used_bytes) },
              { label: "total", color: "var(--chart-3)", points: series(samples, (s) => s.mem_total_bytes) },
            ]}
          />
          <LineChart
            title="Disk"
            format={formatBytes}
            series={[
              { label: "used", color: "var(--chart-2)", points: series(samples, (s) => s.disk_used_bytes) },
              { label: "total", color: "var(--chart-3)", points: series(samples, (s) => s.disk_total_bytes) },
            ]}
          />
        </div>
      )}
      <p class="empty">
        Last 15 minutes{running ? ", refreshed every 10 s" : ""}. Samples are taken while the sandbox runs.
      </p>
    </div>
  );
}
