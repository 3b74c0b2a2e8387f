import type { BuildInfo, BuildLogEntry } from "@wrenn/sdk";

/**
 * How a build's log reads in a terminal: step headers (`[3/7] RUN …`) as they are, a step's
 * command output indented under its header, the build's own messages marked with `·`.
 * Error entries are left out: the failure is printed once, at the end, with its output tail.
 */
export function formatLogEntry(entry: BuildLogEntry): string | undefined {
  if (entry.level === "error") return undefined;
  if (/^\[\d+\/\d+\] /.test(entry.message)) return entry.message;
  if (/^\d+$/.test(entry.step)) return `      ${entry.message}`;
  return `  · ${entry.message}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The closing lines of a ready build: its time, the cache's share, and how to use it. */
export function formatBuildDone(build: BuildInfo, elapsedMs: number): string {
  const cached = build.stepsCached > 0 ? plural(build.stepsCached, "step", "steps") : "no steps";
  return [
    `template ${build.template} ready in ${(elapsedMs / 1000).toFixed(1)} s (${cached} from the cache, ${build.stepsTotal} in all)`,
    `start a sandbox from it: wrenn sandbox create ${build.template}`,
  ].join("\n");
}

/** A failed build for stderr: the error's first line, then the step's output tail indented. */
export function formatBuildFailure(build: BuildInfo): string {
  const [first = `build ${build.buildId} failed`, ...rest] = (build.error?.message ?? "").split("\n");
  const tail = rest.map((line) => `    ${line}`);
  return [
    `error [build_failed]: template ${build.template}: ${first}`,
    ...tail,
    `(hint: fix it and build again; the steps before it come from the cache. Full log: wrenn template logs ${build.buildId})`,
  ].join("\n");
}
