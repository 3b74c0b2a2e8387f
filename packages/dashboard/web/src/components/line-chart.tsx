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

const W = 600;
const H = 160;
const PAD = { left: 48, right: 8, top: 8, bottom: 22 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
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
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - Math.min(v, top) / top) * (H - PAD.top - PAD.bottom);
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
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: latest ${latest.join(", ")}`}>
        {ticks.map((v) => (
          <g key={v}>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
            <text class="axis" x={PAD.left - 4} y={y(v) + 4} text-anchor="end">
              {format(v)}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD.left} y={H - 4}>
          {clock(t0)}
        </text>
        <text class="axis" x={W - PAD.right} y={H - 4} text-anchor="end">
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
