/**
 * What LineChart and BarChart share: the SVG's coordinate box (small enough that its 13 px
 * axis text stays readable when three charts sit side by side) and the y axis's round top.
 */
export const CHART_W = 400;
export const CHART_H = 140;
export const CHART_PAD = { left: 60, right: 8, top: 10, bottom: 24 };

/** The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `v` (1 for nothing above zero). */
export function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** y of value `v` in a chart whose axis tops out at `top`. */
export const chartY = (v: number, top: number): number =>
  CHART_PAD.top + (1 - Math.min(v, top) / top) * (CHART_H - CHART_PAD.top - CHART_PAD.bottom);
