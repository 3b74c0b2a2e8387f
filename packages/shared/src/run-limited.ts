/**
 * Runs `task(0)` … `task(count - 1)` with at most `limit` in flight, in index order. After a
 * task fails no new one starts; the ones in flight finish, then the first error is thrown,
 * so a caller's cleanup sees everything that was made.
 */
export async function runLimited(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < count) {
      const index = next++;
      try {
        await task(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(limit, count)) }, worker));
  if (failure) throw failure.error;
}
