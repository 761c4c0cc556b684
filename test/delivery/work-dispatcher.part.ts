import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { deliveryJobId, WorkDispatcher } from '../../queues/deliver-report';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { jobState } from '../support/service';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * The stale-delivery sweep re-queues an open delivery by its job id. When that job already failed for
 * good (its last attempt could not record the failure), re-adding the id alone does nothing while
 * BullMQ keeps the failed job: the dispatcher runs it once more instead. Real Redis.
 */
const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const dispatcher = new WorkDispatcher(bullConnectionOptions(TEST_REDIS_URL), prefix, { attempts: 1, backoffMs: 10 });
const queue = new Queue(QUEUES.deliverReport, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });

afterAll(async () => {
  await dispatcher.close();
  await queue.close();
  await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
});

it('runs a delivery job that failed for good once more when the delivery is queued again under its id', async () => {
  const deliveryId = randomUUID();
  const jobId = deliveryJobId(deliveryId, 0);
  const runs: string[] = [];
  // The first run fails for good, as a last attempt that could not record its failure would leave it.
  const worker = new Worker(
    QUEUES.deliverReport,
    async (job) => {
      runs.push(job.id ?? '');
      if (runs.length === 1) throw new UnrecoverableError('database down while recording the failure');
      return { state: 'delivered' };
    },
    { connection: bullConnectionOptions(TEST_REDIS_URL), prefix },
  );
  try {
    await dispatcher.deliver(deliveryId, 0);
    expect(await jobState(queue, jobId, 'failed')).toBe('failed');

    // The sweep's call for the still-open delivery: the job runs again (and this time settles it).
    await dispatcher.deliver(deliveryId, 0);
    expect(await jobState(queue, jobId, 'completed')).toBe('completed');
    expect(runs).toEqual([jobId, jobId]);

    // A job that completed is not run again by a later call (a rerun would be waiting right after it).
    await dispatcher.deliver(deliveryId, 0);
    expect(await queue.getJobState(jobId)).toBe('completed');
  } finally {
    await worker.close();
  }
});
