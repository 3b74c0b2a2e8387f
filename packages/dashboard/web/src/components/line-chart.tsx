import { CHART_H, CHART_PAD, CHART_W, chartY, niceMax } from "./chart-frame.js";

/**
 * A time-series chart in plain SVG (no chart library: a few hundred bytes instead of tens of
 * kilobytes). Scales to its container's width; the label says the latest value for screen readers.
 */

export interface Point {
  /** Unix milliseconds. */
  t: number;
  v: number;
}

export interface Series {
  label: string;
  points: readonly Point[];
  /** CSS colour (a custom property). */
  color: string;
}

const clock = (t: number) =>
  new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });

export function LineChart({
  title,
  series,
  format,
  max,
}: {
  title: string;
  series: readonly Series[];
  format: (v: number) => string;
  /** A fixed top of the y axis (100 for percentages); otherwise from the data. */
  max?: number;
}) {
  const all = series.flatMap((s) => s.points);
  const latest = series.map(
    (s) => `${s.label} ${s.points.length ? format(s.points.at(-1)?.v ?? 0) : "no data"}`,
  );
  if (all.length === 0) {
    return (
      <figure class="chart">
        <figcaption>{title}</figcaption>
        <p class="empty">No samples yet.</p>
      </figure>
    );
  }
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(t0 + 1, ...all.map((p) => p.t));
  const top = max ?? niceMax(Math.max(...all.map((p) => p.v)));
  const x = (t: number) =>
    CHART_PAD.left + ((t - t0) / (t1 - t0)) * (CHART_W - CHART_PAD.left - CHART_PAD.right);
  const y = (v: number) => chartY(v, top);
  const ticks = [0, 0.5, 1].map((f) => top * f);
  return (
    <figure class="chart">
      <figcaption>
        {title}
        <span class="chart-legend">
          {series.map((s) => (
            <span key={s.label} class="legend-item">
              <span class="swatch" style={{ background: s.color }} aria-hidden="true" /> {s.label}
            </span>
          ))}
        </span>
      </figcaption>
      <svg
        viewBox={`0 0 ${CHART_W} ${CHART_H}`}
        role="img"
        aria-label={`${title}: latest ${latest.join(", ")}`}
      >
        {ticks.map((v) => (
          <g key={v}>
            <line class="grid" x1={CHART_PAD.left} x2={CHART_W - CHART_PAD.right} y1={y(v)} y2={y(v)} />
            <text class="axis" x={CHART_PAD.left - 4} y={y(v) + 4} text-anchor="end">
              {format(v)}
            </text>
          </g>
        ))}
        <text class="axis" x={CHART_PAD.left} y={CHART_H - 4}>
          {clock(t0)}
        </text>
        <text class="axis" x={CHART_W - CHART_PAD.right} y={CHART_H - 4} text-anchor="end">
          {clock(t1)}
        </text>
        {series.map((s) => (
          <polyline
            key={s.label}
            fill="none"
            stroke={s.color}
            stroke-width="2"
            vector-effect="non-scaling-stroke"
            points={s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
    </figure>
  );
}
