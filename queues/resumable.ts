import type { WorkerOptions } from 'bullmq';

/**
 * Stalls a resumable job may go through before BullMQ fails it. BullMQ's default, 1, fails a job
 * whose worker died (or lost its lock) twice, without running it again and without the processor's
 * last-attempt handling: a delivery would stay `sending`, an upload `assembling`, with nobody told.
 * The jobs of these workers resume from what PostgreSQL says, so being picked up again is not a
 * failure; a job that kills its worker every time still ends, after this many.
 */
export const RESUMABLE_MAX_STALLED = 20;

/**
 * Lock settings of a worker whose jobs resume (a pull from its cursor, a delivery by searching the
 * recipient for the report, an assembly that finds its version, an ingest by its rows): the lock is
 * renewed every `lockDurationMs / 2`, a job whose worker died is picked up again within
 * `lockDurationMs`, up to {@link RESUMABLE_MAX_STALLED} times.
 */
export function resumableJobLock(lockDurationMs: number): Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> {
  return { lockDuration: lockDurationMs, stalledInterval: lockDurationMs, maxStalledCount: RESUMABLE_MAX_STALLED };
}
