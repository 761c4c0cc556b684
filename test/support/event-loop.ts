import { performance } from 'node:perf_hooks';

/**
 * How long the event loop was held while some work ran (tests of the work that runs off the event
 * loop: the assembly thread, the PDF thread): the longest gap between ticks of a 5 ms timer, and the
 * event loop's utilization (the share of the time it was busy rather than waiting; unlike a gap, not
 * lengthened when the machine's cores are taken by other work and this thread waits to be scheduled).
 * @see https://nodejs.org/docs/latest-v20.x/api/perf_hooks.html#performanceeventlooputilizationutilization1-utilization2
 */
export async function longestGapDuring<T>(work: () => Promise<T>): Promise<{ result: T; longestGapMs: number; ms: number; utilization: number }> {
  const elu = performance.eventLoopUtilization();
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
    return { result, longestGapMs: Math.max(longestGapMs, end - last), ms: end - start, utilization: performance.eventLoopUtilization(elu).utilization };
  } finally {
    clearInterval(timer);
  }
}
