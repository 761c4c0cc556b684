import { DelayedError, type Job } from 'bullmq';

/**
 * Gives a running job back to its queue as this worker stops (SIGTERM), instead of holding the stop
 * until the job's end: the job is put in the delayed set to run at once — another worker takes it now,
 * or this service once restarted — without spending an attempt (as a job waiting for a paused
 * endpoint does, paused-endpoint.ts). The job must resume from what it committed (a pull task from
 * its cursor).
 * @returns BullMQ's `DelayedError`, for the processor to throw: it ends this run, the job moved already.
 */
export async function handJobBack(job: Job, token: string | undefined): Promise<DelayedError> {
  if (token === undefined) throw new Error('a job run without a lock token cannot be handed back');
  await job.moveToDelayed(Date.now(), token);
  return new DelayedError();
}
