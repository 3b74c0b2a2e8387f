import { CHART_H, CHART_PAD, CHART_W, chartY, niceMax } from "./chart-frame.js";

/**
 * One value per category (a day) as bars, in plain SVG like LineChart. The numbers are also
 * in a table beside it: the chart's label gives screen readers the total and the largest bar.
 */

export interface Bar {
  label: string;
  v: number;
}

export function BarChart({
  title,
  bars,
  format,
  color = "var(--chart-1)",
}: {
  title: string;
  bars: readonly Bar[];
  format: (v: number) => string;
  color?: string;
}) {
  if (bars.length === 0) {
    return (
      <figure class="chart">
        <figcaption>{title}</figcaption>
        <p class="empty">No data.</p>
      </figure>
    );
  }
  const top = niceMax(Math.max(...bars.map((b) => b.v)));
  const total = bars.reduce((s, b) => s + b.v, 0);
  const peak = bars.reduce((a, b) => (b.v > a.v ? b : a));
  const slot = (CHART_W - CHART_PAD.left - CHART_PAD.right) / bars.length;
  const barW = Math.max(1, slot * 0.7);
  const y = (v: number) => chartY(v, top);
  const base = y(0);
  // Label a handful of bars only, so the labels never overlap.
  const every = Math.ceil(bars.length / 7);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${CHART_W} ${CHART_H}`}
        role="img"
        aria-label={`${title}: total ${format(total)}, most ${format(peak.v)} on ${peak.label}`}
      >
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line
              class="grid"
              x1={CHART_PAD.left}
              x2={CHART_W - CHART_PAD.right}
              y1={y(top * f)}
              y2={y(top * f)}
            />
            <text class="axis" x={CHART_PAD.left - 4} y={y(top * f) + 4} text-anchor="end">
              {format(top * f)}
            </text>
          </g>
        ))}
        {bars.map((b, i) => {
          const x = CHART_PAD.left + i * slot + (slot - barW) / 2;
          return (
            <g key={b.label}>
              <rect x={x} y={y(b.v)} width={barW} height={Math.max(0, base - y(b.v))} fill={color}>
                <title>{`${b.label}: ${format(b.v)}`}</title>
              </rect>
              {(i % every === 0 || i === bars.length - 1) && (
                <text class="axis" x={x + barW / 2} y={CHART_H - 4} text-anchor="middle">
                  {b.label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
