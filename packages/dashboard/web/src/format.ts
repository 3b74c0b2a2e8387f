/** How the dashboard writes numbers and times. */

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "3 min ago", "in 2 h". */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "–";
  const diff = new Date(iso).getTime() - now;
  const abs = Math.abs(diff) / 1000;
  const [v, unit] =
    abs < 60
      ? [abs, "s"]
      : abs < 3600
        ? [abs / 60, "min"]
        : abs < 86400
          ? [abs / 3600, "h"]
          : [abs / 86400, "d"];
  const text = `${Math.round(v)} ${unit}`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

export const formatPct = (n: number): string => `${n.toFixed(n < 10 ? 1 : 0)} %`;
