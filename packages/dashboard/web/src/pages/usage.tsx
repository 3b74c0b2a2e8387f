/** The team's usage per UTC day (CPU-minutes, memory GiB-hours, sandbox-hours) and totals over time. */
import type { UsageDayView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../api/client.js";
import { useApi } from "../api/use-api.js";
import { BarChart } from "../components/bar-chart.js";
import type { Column } from "../components/data-table.js";
import { DataTable } from "../components/data-table.js";
import { ErrorNote } from "../components/error-note.js";
import { Field } from "../components/field.js";
import { Page, Panel } from "../components/page.js";
import type { PageProps } from "../routes.js";
import { TeamMetrics } from "./usage/team-metrics.js";

const DAY_CHOICES = [7, 14, 30, 90] as const;

/** Two significant digits below 1 (a minute of a small sandbox is 0.008 GiB-hours), fewer decimals above. */
const num = (v: number) =>
  v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : String(Number(v.toPrecision(2)));
/** "12-05" from "2026-12-05": the year is in the table. */
const shortDate = (d: string) => d.slice(5);

const columns: Column<UsageDayView>[] = [
  { label: "Day (UTC)", render: (d) => d.date },
  { label: "CPU-minutes", render: (d) => num(d.cpu_minutes), numeric: true },
  { label: "Memory GiB-hours", render: (d) => num(d.memory_gib_hours), numeric: true },
  { label: "Sandbox-hours", render: (d) => num(d.sandbox_hours), numeric: true },
];

export function UsagePage({ query }: PageProps) {
  const [days, setDays] = useState<number>(Number(query.get("days")) || 7);
  const usage = useApi(
    async (signal) =>
      (await api<{ items: UsageDayView[] }>("GET", "/v1/usage", { query: { days }, signal })).items,
    [days],
  );
  const rows = usage.data ?? [];
  const total = (pick: (d: UsageDayView) => number) => rows.reduce((s, d) => s + pick(d), 0);
  return (
    <Page title="Usage">
      <Panel title="Per day">
        <div class="toolbar">
          <Field label="Days">
            <select value={days} onChange={(e) => setDays(Number(e.currentTarget.value))}>
              {DAY_CHOICES.map((d) => (
                <option key={d} value={d}>
                  {d} days
                </option>
              ))}
            </select>
          </Field>
          {usage.data && (
            <p class="usage-totals">
              Total: <strong>{num(total((d) => d.cpu_minutes))}</strong> CPU-minutes,{" "}
              <strong>{num(total((d) => d.memory_gib_hours))}</strong> memory GiB-hours,{" "}
              <strong>{num(total((d) => d.sandbox_hours))}</strong> sandbox-hours
            </p>
          )}
        </div>
        <ErrorNote error={usage.error} />
        {!usage.data && usage.loading && <p class="loading">Loading usage…</p>}
        {usage.data && (
          <>
            <div class="charts">
              <BarChart
                title="CPU-minutes"
                format={num}
                bars={rows.map((d) => ({ label: shortDate(d.date), v: d.cpu_minutes }))}
              />
              <BarChart
                title="Memory GiB-hours"
                format={num}
                color="var(--chart-3)"
                bars={rows.map((d) => ({ label: shortDate(d.date), v: d.memory_gib_hours }))}
              />
              <BarChart
                title="Sandbox-hours"
                format={num}
                color="var(--chart-2)"
                bars={rows.map((d) => ({ label: shortDate(d.date), v: d.sandbox_hours }))}
              />
            </div>
            <DataTable
              rows={[...rows].reverse()}
              columns={columns}
              rowKey={(d) => d.date}
              caption="Usage per day, newest first"
              empty="No usage in this period."
            />
          </>
        )}
      </Panel>
      <TeamMetrics />
    </Page>
  );
}
