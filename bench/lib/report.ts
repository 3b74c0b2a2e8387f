import { higherIsBetter, type Measurement } from "./measurement.js";

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toFixed(0);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function ratioText(m: Measurement): string {
  if (m.ratio === undefined || m.baseline === undefined) return "";
  const r = m.ratio.p50;
  const slower = higherIsBetter(m.unit) ? r < 1 : r > 1;
  return `p50 ${fmt(r)}×, p95 ${fmt(m.ratio.p95)}× of "${m.baseline}" (${slower ? "slower" : "faster"})`;
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
}

/** A plain-text table of one suite's figures, with ratios to their baselines beneath. */
export function formatMeasurements(suite: string, measurements: readonly Measurement[]): string {
  const header = ["measurement", "unit", "n", "p50", "p95", "min", "max"];
  const rows = measurements.map((m) => [
    m.name,
    m.unit,
    String(m.summary.n),
    fmt(m.summary.p50),
    fmt(m.summary.p95),
    fmt(m.summary.min),
    fmt(m.summary.max),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const lines = [`== ${suite}`, pad(header, widths), ...rows.map((r) => pad(r, widths))];
  const ratios = measurements.filter((m) => m.ratio !== undefined);
  if (ratios.length > 0) {
    lines.push("", "ratios (same run):");
    for (const m of ratios) lines.push(`  ${m.name}`, `      ${ratioText(m)}`);
  }
  const notes = measurements.filter((m) => m.notes !== undefined);
  if (notes.length > 0) {
    lines.push("", "notes:");
    for (const m of notes) lines.push(`  ${m.name}: ${m.notes}`);
  }
  return `${lines.join("\n")}\n`;
}
