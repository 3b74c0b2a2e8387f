/** How a process ended, described the way E2B's envd (Go's os.ProcessState) does. */
export interface ProcessExit {
  exitCode: number;
  exited: boolean;
  status: string;
  error: string | undefined;
}

// Go's signal descriptions, which clients may match on ("signal: killed").
const SIGNAL_WORDS: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: "killed",
  SIGTERM: "terminated",
  SIGINT: "interrupt",
  SIGHUP: "hangup",
  SIGQUIT: "quit",
  SIGABRT: "aborted",
  SIGSEGV: "segmentation fault",
  SIGPIPE: "broken pipe",
  SIGUSR1: "user defined signal 1",
  SIGUSR2: "user defined signal 2",
  SIGBUS: "bus error",
  SIGFPE: "floating point exception",
  SIGILL: "illegal instruction",
};

export function describeExit(code: number | null, signal: NodeJS.Signals | null): ProcessExit {
  if (code !== null) {
    const status = `exit status ${code}`;
    return { exitCode: code, exited: true, status, error: code === 0 ? undefined : status };
  }
  const status = `signal: ${signal ? (SIGNAL_WORDS[signal] ?? signal) : "unknown"}`;
  return { exitCode: -1, exited: false, status, error: status };
}

/** node-pty reports a signal as a number. */
export function signalName(signal: number): NodeJS.Signals | null {
  if (!signal) return null;
  const names: Record<number, NodeJS.Signals> = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    6: "SIGABRT",
    9: "SIGKILL",
    11: "SIGSEGV",
    13: "SIGPIPE",
    15: "SIGTERM",
  };
  return names[signal] ?? null;
}
