import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import type { BlobStore } from '../src/blobs/blob-store';
import { BlobOrphanSweeper, orphanGraceMs } from '../src/blobs/orphan-sweep';
import type { CaseServiceDeps } from '../src/cases/case-service';
import type { Config } from '../src/config';
import type { Database } from '../src/db/database';
import { recordSlaMisses, type SlaMisses } from '../src/cases/sla-misses';
import { finishInterruptedDeactivations } from '../src/review/specialist-deactivation';
import { errorFields, logger } from '../src/log';
import { keepJobScheduler } from './keep-scheduled';
import { runJob } from './run-job';

/**
 * Queue `sla-sweep`: every few minutes, record on each case's timeline the moment its report
 * became overdue (target: 5 business days; limit: 7), and tell the case managers (notification and
 * webhook events `sla.target_missed`, `sla.limit_missed`) so they can act.
 *
 * Idempotent: a miss is inserted once per (case, kind, due date) by a unique index, so a job that
 * runs twice, or two workers sweeping at once, record it once. A later pause that moves the due
 * date out lets the new due date be missed (and recorded) again.
 *
 * The same run finishes deactivations interrupted after their flag was committed (the open cases of
 * an inactive specialist released: `finishInterruptedDeactivations`; idempotent too), and, at most once
 * a day per process (the first run after a start included), sweeps the blob store's orphans: files no
 * `blobs` row names, older than `BLOB_ORPHAN_GRACE_HOURS`, and stale temp files (`BlobOrphanSweeper`,
 * src/blobs/orphan-sweep.ts; idempotent, safe beside writers and other sweeps). A failed blob sweep is
 * logged, and neither fails the job nor holds up the SLA work, which runs first; a closing worker stops it.
 */
export const SLA_SWEEP_QUEUE = 'sla-sweep';

export const SlaSweepPayload = z.object({}).strict();
export type SlaSweepPayload = z.infer<typeof SlaSweepPayload>;

/** How often the sweep runs. */
export const SLA_SWEEP_EVERY_MS = 5 * 60 * 1000;

export type SlaSweepResult = SlaMisses;

/** The processor's work, callable directly (tests, `npm run` tools): every case's misses (see {@link recordSlaMisses}). */
export function sweepSla(db: Database, now: Date, timeZone: string): Promise<SlaSweepResult> {
  return recordSlaMisses(db, now, timeZone);
}

export interface SlaSweepHandles {
  readonly queue: Queue;
  readonly worker: Worker;
}

/** What the sweep needs: the worker's blob store, and of the configuration the program's time zone and the orphan grace. */
export type SlaSweepDeps = CaseServiceDeps & { readonly blobs: BlobStore; readonly config: Pick<Config, 'programTimeZone' | 'blobOrphanGraceHours'> };

export function startSlaSweep(deps: SlaSweepDeps, connection: () => ConnectionOptions, prefix: string): SlaSweepHandles {
  const timeZone = deps.config.programTimeZone;
  const queue = new Queue(SLA_SWEEP_QUEUE, { connection: connection(), prefix });
  queue.on('error', () => undefined);
  const blobOrphans = new BlobOrphanSweeper(deps.db, deps.blobs, { graceMs: orphanGraceMs(deps.config) });
  const closing = new AbortController();
  const worker = new Worker<SlaSweepPayload, SlaSweepResult>(
    SLA_SWEEP_QUEUE,
    async (job) =>
      runJob(SLA_SWEEP_QUEUE, job, async () => {
        SlaSweepPayload.parse(job.data);
        const result = await sweepSla(deps.db, new Date(), timeZone);
        if (result.targetMissed + result.limitMissed > 0) logger.info('sla misses recorded', { counts: { ...result } });
        await finishInterruptedDeactivations(deps);
        await blobOrphans.sweepIfDue(closing.signal);
        return result;
      }),
    { connection: connection(), prefix, concurrency: 1 },
  );
  worker.on('failed', (_job, err) => logger.error('sla sweep failed', errorFields(err)));
  worker.on('error', () => undefined); // connection errors: BullMQ reconnects by itself
  worker.on('closing', () => closing.abort());
  keepJobScheduler(queue, 'sla-sweep-schedule', SLA_SWEEP_EVERY_MS, { name: 'sweep', data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } }, worker);
  return { queue, worker };
}
