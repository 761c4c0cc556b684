import type { ConnectionOptions } from 'bullmq';
import type { Config } from '../src/config';
import type { DomainData } from '../src/cases/domain-data';
import type { Database } from '../src/db/database';
import { startSlaSweep } from './sla-sweep';

/**
 * BullMQ topology: one module per queue (payload schema, retry policy, concurrency, processor).
 * Queues so far:
 * - `sla-sweep` (./sla-sweep.ts): repeatable, records SLA misses on case timelines.
 */
export interface WorkerDeps {
  readonly db: Database;
  readonly config: Config;
  readonly domain: DomainData;
  /** A fresh connection per Queue/Worker, as BullMQ recommends for blocking commands. */
  readonly connection: () => ConnectionOptions;
}

export interface RunningWorkers {
  close(): Promise<void>;
}

export async function startWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  const sla = startSlaSweep(deps.db, deps.connection, deps.config.queuePrefix);
  return {
    async close() {
      await sla.worker.close();
      await sla.queue.close();
    },
  };
}
