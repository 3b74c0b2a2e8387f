const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Runs `work` with a spinner and the elapsed time on `out` (stderr, so stdout stays clean
 * for pipes) when `enabled`; otherwise just runs it.
 */
export async function withSpinner<T>(
  out: NodeJS.WritableStream,
  enabled: boolean,
  label: string,
  work: () => Promise<T>,
): Promise<T> {
  if (!enabled) return work();
  const started = Date.now();
  let frame = 0;
  const draw = () => {
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    out.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label} ${secs}s`);
  };
  draw();
  const timer = setInterval(draw, 100);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    out.write("\r\x1b[2K");
  }
}
