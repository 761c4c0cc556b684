import type { Job } from 'bullmq';
import { delayJob } from './hand-back';
import { CircuitOpenError } from '../src/fhir';

/**
 * Waiting for an endpoint that its circuit breaker paused, instead of failing.
 *
 * A job that meets an open circuit (`CircuitOpenError`, with the time the breaker lets a probe
 * through) is put back in the delayed set until then, without spending one of its attempts: its
 * retries (seconds apart) would all end inside the breaker's cool-down (a minute) and fail a source
 * that is merely paused. While another job's probe is in flight the breaker's `retryAt` is the end of
 * that probe's lease (minutes), so a single wait is capped at {@link PAUSE_RECHECK_MS}: waiting jobs
 * ask again soon after the probe closes the circuit. A job waits at most `budgetMs` in all (counted
 * from its first wait, kept in its payload); after that the error takes the normal path (attempts,
 * then failed for good), so an endpoint that stays down ends the pull `partial` within a bounded time.
 * A little jitter keeps the waiting jobs of one endpoint from all asking at the same instant.
 */
export const PAUSE_RECHECK_MS = 10_000;

const JITTER_MS = 250;

/** Whether a job that first waited at `pausedSince` (if ever) may still wait at `now`. */
export function mayWaitForPause(now: number, pausedSince: number | undefined, budgetMs: number): boolean {
  return budgetMs > 0 && (pausedSince === undefined || now - pausedSince < budgetMs);
}

/**
 * When a job that met `err` should run again (epoch ms), or `undefined` when it must not wait (not a
 * paused endpoint, or its waiting budget is spent). `now` is the time the job started, the same the
 * caller gave {@link mayWaitForPause}, so both answers agree.
 */
export function pauseWaitUntil(err: unknown, now: number, pausedSince: number | undefined, budgetMs: number, random: () => number = Math.random): number | undefined {
  if (!(err instanceof CircuitOpenError) || !mayWaitForPause(now, pausedSince, budgetMs)) return undefined;
  const deadline = (pausedSince ?? now) + budgetMs;
  return Math.min(Math.max(err.retryAt, now), now + PAUSE_RECHECK_MS, deadline) + Math.floor(random() * JITTER_MS);
}

/**
 * Runs a job's work so that it waits for a paused endpoint: `work` is told whether the job will wait
 * (then it must not fail anything for good on a `CircuitOpenError`); when it throws one and the job
 * may still wait, the job goes back to the delayed set until {@link pauseWaitUntil} (its payload
 * remembering when it first waited) and BullMQ's `DelayedError` ends this run without spending an
 * attempt. Any other outcome is `work`'s own.
 */
export async function runWaitingIfPaused<D, P extends D & { readonly pausedSince?: number | undefined }, T>(
  job: Job<D>,
  token: string | undefined,
  payload: P,
  budgetMs: number,
  work: (waitsIfPaused: boolean) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const waits = token !== undefined && mayWaitForPause(started, payload.pausedSince, budgetMs);
  try {
    return await work(waits);
  } catch (err) {
    const until = waits ? pauseWaitUntil(err, started, payload.pausedSince, budgetMs) : undefined;
    if (until === undefined || token === undefined) throw err;
    await job.updateData({ ...payload, pausedSince: payload.pausedSince ?? started });
    return delayJob(job, token, until);
  }
}
