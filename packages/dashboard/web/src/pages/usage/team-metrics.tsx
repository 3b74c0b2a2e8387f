/** The team's running sandboxes, vCPUs and memory over a recent window (`/v1/team/metrics`). */
import type { TeamMetricsSampleView } from "@wrenn/api";
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api/client.js";
import { useApi } from "../../api/use-api.js";
import { ErrorNote } from "../../components/error-note.js";
import { Field } from "../../components/field.js";
import { LineChart, type Point } from "../../components/line-chart.js";
import { Panel } from "../../components/page.js";
import { formatBytes } from "../../format.js";

const WINDOWS = [
  { label: "Last hour", seconds: 3600 },
  { label: "Last 6 hours", seconds: 6 * 3600 },
  { label: "Last 24 hours", seconds: 24 * 3600 },
  { label: "Last week", seconds: 7 * 24 * 3600 },
] as const;

/** A chart needs a few hundred points at most: keep every n-th sample beyond that. */
const MAX_POINTS = 400;

function thin(points: Point[]): Point[] {
  if (points.length <= MAX_POINTS) return points;
  const step = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % step === 0 || i === points.length - 1);
}

const whole = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export function TeamMetrics() {
  const [seconds, setSeconds] = useState<number>(WINDOWS[0].seconds);
  const samples = useApi(
    async (signal) => {
      const end = Math.floor(Date.now() / 1000);
      const query = { start: end - seconds, end };
      return (await api<{ items: TeamMetricsSampleView[] }>("GET", "/v1/team/metrics", { query, signal }))
        .items;
    },
    [seconds],
  );
  useEffect(() => {
    const timer = setInterval(samples.reload, 30_000);
    return () => clearInterval(timer);
  }, []);
  const series = (pick: (s: TeamMetricsSampleView) => number): Point[] =>
    thin((samples.data ?? []).map((s) => ({ t: Date.parse(s.timestamp), v: pick(s) })));
  return (
    <Panel title="Team over time">
      <div class="toolbar">
        <Field label="Window">
          <select value={seconds} onChange={(e) => setSeconds(Number(e.currentTarget.value))}>
            {WINDOWS.map((w) => (
              <option key={w.seconds} value={w.seconds}>
                {w.label}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorNote error={samples.error} />
      {!samples.data && samples.loading ? (
        <p class="loading">Loading team metrics…</p>
      ) : (
        <div class="charts">
          <LineChart
            title="Running sandboxes"
            format={whole}
            series={[
              { label: "sandboxes", points: series((s) => s.running_sandboxes), color: "var(--chart-1)" },
            ]}
          />
          <LineChart
            title="vCPUs"
            format={whole}
            series={[{ label: "vCPUs", points: series((s) => s.vcpus), color: "var(--chart-2)" }]}
          />
          <LineChart
            title="Memory"
            format={(v) => formatBytes(v * 1024 * 1024)}
            series={[{ label: "memory", points: series((s) => s.memory_mib), color: "var(--chart-3)" }]}
          />
        </div>
      )}
    </Panel>
  );
}
