/**
 * One value per category (a day) as bars, in plain SVG like LineChart. The numbers are also
 * in a table beside it: the chart's label gives screen readers the total and the largest bar.
 */

export interface Bar {
  label: string;
  v: number;
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
  const slot = (W - PAD.left - PAD.right) / bars.length;
  const barW = Math.max(1, slot * 0.7);
  const y = (v: number) => PAD.top + (1 - Math.min(v, top) / top) * (H - PAD.top - PAD.bottom);
  const base = y(0);
  // Label a handful of bars only, so the labels never overlap.
  const every = Math.ceil(bars.length / 7);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}: total ${format(total)}, most ${format(peak.v)} on ${peak.label}`}
      >
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(top * f)} y2={y(top * f)} />
            <text class="axis" x={PAD.left - 4} y={y(top * f) + 4} text-anchor="end">
              {format(top * f)}
            </text>
          </g>
        ))}
        {bars.map((b, i) => {
          const x = PAD.left + i * slot + (slot - barW) / 2;
          return (
            <g key={b.label}>
              <rect x={x} y={y(b.v)} width={barW} height={Math.max(0, base - y(b.v))} fill={color}>
                <title>{`${b.label}: ${format(b.v)}`}</title>
              </rect>
              {(i % every === 0 || i === bars.length - 1) && (
                <text class="axis" x={x + barW / 2} y={H - 4} text-anchor="middle">
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
