import { Queue } from 'bullmq';
import { QUEUES } from '../../queues/names';
import type { Config } from '../../src/config';
import { bullConnectionOptions } from '../../src/redis';

/**
 * How many times pull-source jobs were started again after a first start (a failed attempt retried
 * with backoff, or a stalled job whose worker died picked up again), from BullMQ's own counters.
 */
export async function pullJobRestarts(config: Config): Promise<number> {
  const queue = new Queue(QUEUES.pullSource, { connection: { ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1 }, prefix: config.queuePrefix });
  queue.on('error', () => undefined);
  try {
    const jobs = await queue.getJobs(['completed', 'failed', 'active', 'wait', 'delayed']);
    return jobs.reduce((n, job) => n + Math.max(0, job.attemptsStarted - 1), 0);
  } finally {
    await queue.close();
  }
}
