import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { keepJobScheduler } from '../../queues/keep-scheduled';
import { bullConnectionOptions } from '../../src/redis';
import { eventually } from '../support/service';

/**
 * A repeating schedule lives in Redis only: when Redis loses its data the schedule is written back by
 * the next check of a running process, and its jobs run again. Real Redis, own queue prefix.
 */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

it('writes a schedule back after Redis lost it, and its jobs run again', async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(REDIS_URL);
  const queue = new Queue('sweep', { connection, prefix });
  let runs = 0;
  const worker = new Worker('sweep', async () => void (runs += 1), { connection, prefix });
  try {
    keepJobScheduler(queue, 'sweep-schedule', 200, { name: 'sweep', data: {}, opts: { removeOnComplete: true } }, worker);
    await eventually(async () => runs, (n) => n >= 1, 10_000);
    // Redis loses everything of the queue: the schedule, its next job, the history.
    await queue.obliterate({ force: true });
    expect(await queue.getJobScheduler('sweep-schedule')).toBeUndefined();
    const before = runs;
    await eventually(async () => queue.getJobScheduler('sweep-schedule'), (s) => s !== undefined && s !== null, 10_000);
    await eventually(async () => runs, (n) => n > before, 10_000);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
});
