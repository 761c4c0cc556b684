import type { Queue } from 'bullmq';

/**
 * The ids of `jobIds` that have no job in `queue`. Jobs are added to a flow only when absent: BullMQ
 * answers a second add of a job id that exists and is not completed by putting it back among its
 * parent's pending children (`updateExistingJobsParent`), so a job that already failed for good,
 * which the parent had set aside (`ignoreDependencyOnFailure`), would keep the parent, and its pull,
 * waiting for ever. A pending job is already waited for and a completed one already counted.
 * @see https://docs.bullmq.io/guide/flows/ignore-dependency
 */
export async function absentJobIds(queue: Queue, jobIds: readonly string[]): Promise<Set<string>> {
  const states = await Promise.all(jobIds.map((jobId) => queue.getJobState(jobId)));
  return new Set(jobIds.filter((_, i) => states[i] === 'unknown'));
}
