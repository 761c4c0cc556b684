import { Queue, type ConnectionOptions } from 'bullmq';
import { QUEUES } from './names';
import { withTimeout } from '../src/util/with-timeout';

/** Job states counted per queue (BullMQ's own names). */
export const COUNTED_STATES = ['waiting', 'prioritized', 'waiting-children', 'active', 'delayed', 'failed', 'completed'] as const;

/** How long a scrape waits for the counts. */
export const COUNT_TIMEOUT_MS = 3000;

/** Jobs of one queue in one state. */
export interface QueueCount {
  readonly queue: string;
  readonly state: (typeof COUNTED_STATES)[number];
  readonly n: number;
}

/**
 * How many jobs each queue of the topology holds, by state, read from Redis when asked (a metrics
 * scrape): work piling up behind a slow EHR, a worker role that is not running, jobs failed for good.
 * One BullMQ `Queue` handle per queue, opened on the first scrape and closed with {@link close}; each
 * holds its own Redis connection (BullMQ bundles another ioredis than ours, so one client cannot be
 * shared without a cast): nine idle connections per API process.
 */
export class QueueDepth {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
  ) {}

  /**
   * Every queue's counts, in the order of {@link QUEUES}.
   * @throws when Redis does not answer within {@link COUNT_TIMEOUT_MS} (a scrape must not hang)
   */
  async counts(): Promise<QueueCount[]> {
    return withTimeout(this.read(), COUNT_TIMEOUT_MS, () => new Error(`queue counts not read within ${COUNT_TIMEOUT_MS} ms`));
  }

  private async read(): Promise<QueueCount[]> {
    const names = Object.values(QUEUES);
    const all = await Promise.all(
      names.map(async (name) => {
        const counts = await this.queue(name).getJobCounts(...COUNTED_STATES);
        return COUNTED_STATES.map((state) => ({ queue: name, state, n: counts[state] ?? 0 }));
      }),
    );
    return all.flat();
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      // Errors surface through the counts' promise (the scrape fails, /readyz names Redis).
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }
}
