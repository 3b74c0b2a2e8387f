/**
 * A shell in the sandbox: xterm (its DOM renderer, so `.xterm-rows` holds the text) over the PTY
 * WebSocket. xterm loads on first use, keeping it out of the dashboard's first load. The terminal
 * fits its box on window resize and whenever its tab is shown again.
 */
import type { FitAddon } from "@xterm/addon-fit";
import type { Terminal } from "@xterm/xterm";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../../api/client.js";
import { ErrorNote } from "../../components/error-note.js";
import { PtySocket, type PtyStatus } from "./pty-socket.js";

interface Session {
  term: Terminal;
  fit: FitAddon;
  socket: PtySocket | null;
}

function statusText(s: PtyStatus): string {
  switch (s.kind) {
    case "connecting":
      return "Connecting…";
    case "started":
      return `Connected (shell pid ${s.pid})`;
    case "exited":
      return `The shell exited with code ${s.exitCode}${s.error ? `: ${s.error}` : ""}.`;
    case "failed":
      return "The terminal failed.";
    case "closed":
      return "Disconnected.";
  }
}

export function TerminalTab({ sandboxId, active }: { sandboxId: string; active: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const session = useRef<Session | null>(null);
  const [status, setStatus] = useState<PtyStatus>({ kind: "connecting" });
  const [loadError, setLoadError] = useState<Error | null>(null);

  const connect = () => {
    const s = session.current;
    if (!s) return;
    s.socket?.close();
    s.term.reset();
    s.fit.fit();
    s.socket = new PtySocket(
      sandboxId,
      { cols: s.term.cols, rows: s.term.rows },
      { onOutput: (bytes) => s.term.write(bytes), onStatus: setStatus },
    );
    s.term.focus();
  };

  useEffect(() => {
    let disposed = false;
    const cleanups: (() => void)[] = [];
    Promise.all([import("@xterm/xterm"), import("@xterm/addon-fit")]).then(
      ([{ Terminal }, { FitAddon }]) => {
        const el = box.current;
        if (disposed || !el) return;
        const term = new Terminal({
          cursorBlink: true,
          fontFamily: "ui-monospace, Menlo, Consolas, monospace",
          fontSize: 14,
          scrollback: 5000,
        });
        const fit = new FitAddon();
        term.loadAddon(fit);
        term.open(el);
        const s: Session = { term, fit, socket: null };
        session.current = s;
        const onData = term.onData((d) => s.socket?.input(d));
        const onBinary = term.onBinary((d) => s.socket?.input(d, true));
        const onResize = term.onResize(({ cols, rows }) => s.socket?.resize(cols, rows));
        const onWindowResize = () => fit.fit();
        window.addEventListener("resize", onWindowResize);
        cleanups.push(() => {
          window.removeEventListener("resize", onWindowResize);
          for (const d of [onData, onBinary, onResize]) d.dispose();
          s.socket?.close();
          term.dispose();
          session.current = null;
        });
        connect();
      },
      (err: Error) => setLoadError(err),
    );
    return () => {
      disposed = true;
      for (const c of cleanups) c();
    };
  }, [sandboxId]);

  // Shown again: its box may have changed size while hidden, and typing should go to it.
  useEffect(() => {
    const s = session.current;
    if (!active || !s) return;
    const frame = requestAnimationFrame(() => {
      s.fit.fit();
      s.term.focus();
    });
    return () => cancelAnimationFrame(frame);
  }, [active]);

  const ended = status.kind === "exited" || status.kind === "failed" || status.kind === "closed";
  return (
    <div>
      <div class="toolbar">
        <span role="status" class="terminal-status">
          {statusText(status)}
        </span>
        {ended && (
          <button type="button" onClick={connect}>
            Reconnect
          </button>
        )}
      </div>
      <ErrorNote error={loadError} />
      {status.kind === "failed" && <ErrorNote error={new ApiError(0, status.code, status.message)} />}
      <div class="terminal" data-testid="terminal">
        {/* xterm fits its parent's content box; the padding stays on the outer box. */}
        <div class="terminal-screen" ref={box} />
      </div>
    </div>
  );
}
