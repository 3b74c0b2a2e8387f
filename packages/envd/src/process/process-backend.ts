import type { ProcessExit } from "./exit-status.js";

export type OutputKind = "stdout" | "stderr" | "pty";

/** What a backend reports about its process. */
export interface BackendEvents {
  onData(kind: OutputKind, data: Uint8Array): void;
  /** Exactly once: the process has exited and all of its output was delivered (or abandoned). */
  onEnd(exit: ProcessExit): void;
}

/** A fully resolved launch: user, cwd and environment already decided. */
export interface ProcessLaunch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Set only when spawn itself must switch identity (no setpriv wrapper). */
  uid?: number | undefined;
  gid?: number | undefined;
}

/** The OS side of a managed process: pipes (spawn.ts) or a terminal (pty.ts). */
export interface ProcessBackend {
  readonly pid: number;
  readonly isPty: boolean;
  pauseOutput(): void;
  resumeOutput(): void;
  writeStdin(data: Uint8Array): Promise<void>;
  closeStdin(): void;
  writePty(data: Uint8Array): void;
  resize(cols: number, rows: number): void;
  /** Signals the process unless it has already exited (its pid may be reused then). */
  kill(signal: NodeJS.Signals): void;
  /**
   * Stops waiting for output once the process has exited: children that inherited the
   * output pipe must not hold back the end event of a killed process.
   */
  abandonOutput(): void;
}

/** The process could not be started at all (bad executable, fork failure). */
export class SpawnError extends Error {
  override readonly name = "SpawnError";
}

/** Input or control sent to a process that cannot take it in that form. */
export class ProcessStateError extends Error {
  override readonly name = "ProcessStateError";
}
