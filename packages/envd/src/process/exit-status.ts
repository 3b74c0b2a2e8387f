import { constants } from "node:os";

/** How a process ended, described the way E2B's envd (Go's os.ProcessState) does. */
export interface ProcessExit {
  exitCode: number;
  exited: boolean;
  status: string;
  /** Go's Wait error text: set for a non-zero exit or a signal, absent for success. */
  error: string | undefined;
}

// Go's descriptions of Linux signals; clients match on them ("signal: killed").
const SIGNAL_WORDS: Partial<Record<NodeJS.Signals, string>> = {
  SIGHUP: "hangup",
  SIGINT: "interrupt",
  SIGQUIT: "quit",
  SIGILL: "illegal instruction",
  SIGTRAP: "trace/breakpoint trap",
  SIGABRT: "aborted",
  SIGBUS: "bus error",
  SIGFPE: "floating point exception",
  SIGKILL: "killed",
  SIGUSR1: "user defined signal 1",
  SIGSEGV: "segmentation fault",
  SIGUSR2: "user defined signal 2",
  SIGPIPE: "broken pipe",
  SIGALRM: "alarm clock",
  SIGTERM: "terminated",
  SIGSTKFLT: "stack fault",
  SIGCHLD: "child exited",
  SIGCONT: "continued",
  SIGSTOP: "stopped (signal)",
  SIGTSTP: "stopped",
  SIGTTIN: "stopped (tty input)",
  SIGTTOU: "stopped (tty output)",
  SIGURG: "urgent I/O condition",
  SIGXCPU: "CPU time limit exceeded",
  SIGXFSZ: "file size limit exceeded",
  SIGVTALRM: "virtual timer expired",
  SIGPROF: "profiling timer expired",
  SIGWINCH: "window changed",
  SIGIO: "I/O possible",
  SIGPWR: "power failure",
  SIGSYS: "bad system call",
};

/** `code` for a normal exit, else `signal` for a process killed by one. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): ProcessExit {
  if (code !== null) {
    const status = `exit status ${code}`;
    return { exitCode: code, exited: true, status, error: code === 0 ? undefined : status };
  }
  const word = signal ? (SIGNAL_WORDS[signal] ?? `signal ${constants.signals[signal] ?? signal}`) : "unknown";
  const status = `signal: ${word}`;
  return { exitCode: -1, exited: false, status, error: status };
}

/** node-pty reports a terminating signal by number (0 for none). */
export function signalName(signal: number): NodeJS.Signals | null {
  if (!signal) return null;
  // Names with a Go description first, so aliases (SIGIOT, SIGPOLL) lose to the usual name.
  const names = [...Object.keys(SIGNAL_WORDS), ...Object.keys(constants.signals)];
  for (const name of names) {
    const value = constants.signals[name as NodeJS.Signals];
    if (value === signal) return name as NodeJS.Signals;
  }
  return null;
}
