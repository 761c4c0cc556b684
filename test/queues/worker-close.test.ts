import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { closeWithGrace } from '../../queues/worker-close';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * Shutdown lets running jobs finish for a while, then lets them go: a job still running after the
 * grace no longer holds the shutdown (its lock lapses and another worker resumes it). BullMQ keeps a
 * worker's first close and hands it to later calls, so a graceful close once started could never be
 * forced: shutdown waited for every running job. Real Redis, own queue prefix.
 */
const connection = bullConnectionOptions(TEST_REDIS_URL);

/** A queue and a worker whose one job runs until `release` is called; `started` resolves once it runs. */
async function oneRunningJob(): Promise<{ queue: Queue; worker: Worker; started: Promise<void>; release: () => void; prefix: string }> {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const queue = new Queue('slow', { connection, prefix });
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let markStarted = (): void => undefined;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const worker = new Worker(
    'slow',
    async () => {
      markStarted();
      await held;
    },
    { connection, prefix },
  );
  worker.on('error', () => undefined);
  await queue.add('page', {});
  return { queue, worker, started, release, prefix };
}

it('stops waiting for a job still running after the grace, and closes the worker', async () => {
  const { queue, worker, started, release, prefix } = await oneRunningJob();
  try {
    await started;
    const t0 = Date.now();
    expect(await closeWithGrace(worker, 300)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(worker.closing).toBeDefined();
  } finally {
    release();
    await queue.close();
    await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  }
});

it('lets a running job finish within the grace, and takes no new one meanwhile', async () => {
  const { queue, worker, started, release, prefix } = await oneRunningJob();
  try {
    await started;
    await queue.add('page', {});
    const closing = closeWithGrace(worker, 10_000);
    release();
    expect(await closing).toBe(true);
    // The second job was never taken: it still waits for the next worker.
    expect(await queue.getJobCounts('waiting', 'active', 'completed')).toMatchObject({ waiting: 1, active: 0, completed: 1 });
  } finally {
    await queue.close();
    await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  }
});
