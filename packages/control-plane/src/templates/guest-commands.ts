import type { GuestClient, ProcessLaunch } from "@wrenn/guest-client";
import { LineSplitter, type StepLog } from "./build-log.js";
import { BuildFailure } from "./build-step-error.js";

/** Lines of output a failed step's error message ends with. */
const TAIL_LINES = 15;

/**
 * Runs one command in a build VM, each output line going to the build log under `step`, and
 * fails the build (BuildFailure) on a non-zero exit, a signal or the time limit.
 */
export async function runLogged(
  guest: GuestClient,
  launch: ProcessLaunch,
  log: StepLog,
  step: string,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const tail: string[] = [];
  const out = new LineSplitter();
  const err = new LineSplitter();
  const emit = (lines: string[]) => {
    for (const line of lines) {
      void log.info(step, line);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  let exitCode: number | undefined;
  let error: string | undefined;
  let pid = 0;
  try {
    for await (const event of guest.start(launch, { signal: abort.signal })) {
      if (event.kind === "started") pid = event.pid;
      else if (event.kind === "stdout" || event.kind === "pty") emit(out.push(event.data));
      else if (event.kind === "stderr") emit(err.push(event.data));
      else if (event.kind === "exited") {
        exitCode = event.exitCode;
        error = event.error;
      }
    }
  } catch (e) {
    if (!timedOut) throw e;
  } finally {
    clearTimeout(timer);
  }
  emit([...out.end(), ...err.end()]);
  if (timedOut) {
    if (pid) await guest.signal({ pid }, "SIGKILL").catch(() => undefined);
    throw new BuildFailure(
      step,
      `step ${step} (${what}) did not finish within ${Math.round(timeoutMs / 1000)} s`,
    );
  }
  if (exitCode !== 0) {
    const how = exitCode === undefined ? (error ?? "ended without an exit code") : `exit code ${exitCode}`;
    const output = tail.length > 0 ? `:\n${tail.join("\n")}` : "";
    throw new BuildFailure(step, `step ${step} (${what}) failed with ${how}${output}`);
  }
}

/** Runs a check once; true when it exits 0. */
export async function check(guest: GuestClient, launch: ProcessLaunch, timeoutMs: number): Promise<boolean> {
  try {
    const res = await guest.exec(launch, { timeoutMs });
    return res.exitCode === 0 && !res.error;
  } catch {
    return false;
  }
}
