import { failuresOf, type DrillPrinter, type DrillResult } from '../../drills/support/drill-log';

/** Time jest gives a quick drill test beyond the drill's own deadline (to report, then stop). */
export const REPORT_MARGIN_MS = 15_000;

/**
 * Runs a drill under jest and expects it to pass. The drill's printed steps are collected; when it
 * fails — a bad count, an error, or no result within `withinMs` — the test fails showing every step
 * it took, so a failure in CI can be read without running it again (a jest timeout would show none).
 * Give the test `withinMs + REPORT_MARGIN_MS` as its timeout.
 */
export async function expectDrillPasses(
  run: (print: DrillPrinter) => Promise<DrillResult>,
  withinMs: number,
  /** Which steps to show on failure (default all). */
  shown: (line: string) => boolean = () => true,
): Promise<void> {
  const lines: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), withinMs);
  });
  const running = run((line) => lines.push(line));
  let late = false;
  try {
    const result = await Promise.race([running, deadline]);
    late = result === 'late';
    const failures = result === 'late' ? [`the drill did not finish within ${withinMs / 1000} s (its steps so far are below)`] : failuresOf(result);
    expect({ failures, log: failures.length === 0 ? [] : lines.filter(shown) }).toEqual({ failures: [], log: [] });
  } finally {
    clearTimeout(timer);
    // A late drill still holds its service, servers and queue keys: let it end and clean up (within
    // the test's margin) rather than leave them to the worker's forced exit and Redis.
    if (late) await Promise.race([running.then(() => undefined, () => undefined), drillTeardownLimit()]);
  }
}

/** How long a late drill is given to end after its test has failed (ms; within {@link REPORT_MARGIN_MS}). */
function drillTeardownLimit(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, REPORT_MARGIN_MS - 5_000).unref());
}
