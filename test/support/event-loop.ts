/**
 * How long the event loop was held while some work ran: the longest gap between ticks of a 5 ms
 * timer (tests of the work that runs off the event loop: the assembly thread, the PDF thread).
 */
export async function longestGapDuring<T>(work: () => Promise<T>): Promise<{ result: T; longestGapMs: number; ms: number }> {
  const start = performance.now();
  let last = start;
  let longestGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    const end = performance.now();
    return { result, longestGapMs: Math.max(longestGapMs, end - last), ms: end - start };
  } finally {
    clearInterval(timer);
  }
}
