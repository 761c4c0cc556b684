import { DelayedError, type Job } from 'bullmq';
import { logger } from '../src/log';

/**
 * Moves the running job to the delayed set, to run at `at`, and ends this run: BullMQ's
 * `DelayedError`, which spends no attempt (a job waiting for a paused endpoint, paused-endpoint.ts; one
 * handed back at a stop, below).
 */
export async function delayJob(job: Job, token: string, at: number): Promise<never> {
  await job.moveToDelayed(at, token);
  throw new DelayedError();
}

/**
 * Gives a running job back to its queue as this worker stops (SIGTERM), instead of holding the stop
 * until the job's end: the job is put in the delayed set to run at once — another worker takes it now,
 * or this service once restarted — without spending an attempt ({@link delayJob}). The job must resume
 * from what it committed (a pull task from its cursor). `handedBack` is logged once the job is moved
 * (ids only).
 */
export async function handJobBack(job: Job, token: string | undefined, handedBack: { readonly message: string; readonly ids: Readonly<Record<string, string | number>> }): Promise<never> {
  if (token === undefined) throw new Error('a job run without a lock token cannot be handed back');
  return delayJob(job, token, Date.now()).catch((err: unknown) => {
    // DelayedError: the job was moved.
    if (err instanceof DelayedError) logger.info(handedBack.message, handedBack.ids);
    throw err;
  });
}
