/**
 * Waits for `work` at most `ms`: its value or its error, or, once `ms` has passed, the error
 * `timedOut()` makes. The timer is cleared either way, so it never holds the process open. A failure
 * of `work` after the time is up is nobody's to handle any more (the caller has moved on): it is
 * dropped here rather than reported as an unhandled rejection.
 * @param work - What to wait for (already started).
 * @param ms - How long to wait for it.
 * @param timedOut - The error to reject with when the time is up (named for the caller's log).
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
