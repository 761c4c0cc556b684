import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { CaseServiceDeps } from '../src/cases/case-service';
import { errorFields, logger, withLogContext } from '../src/log';
import { finishPull } from '../src/pull/finish-pull';
import { unfinishedPulls } from '../src/pull/pull-repository';
import { tasksToEnqueue } from '../src/pull/pull-service';
import { QUEUES } from './names';
import type { PullFlowProducer } from './pull-flow';

/**
 * Queue `pull-reconcile`: Postgres is the system of record and Redis only carries work, so this
 * repeatable job makes sure every unfinished pull has its flow in Redis (after Redis lost data, or
 * an API process died between committing a pull and enqueuing it). Enqueuing uses the same job
 * ids, so a healthy flow is left as it is. Uploads whose ingest job Redis lost are re-queued the same way.
 */
export async function reconcilePulls(deps: CaseServiceDeps, producer: PullFlowProducer): Promise<{ enqueued: number; finished: number }> {
  let enqueued = 0;
  let finished = 0;
  for (const pull of await unfinishedPulls(deps.db)) {
    const taskIds = await tasksToEnqueue(deps.db, pull);
    if (taskIds.length === 0) {
      await finishPull(deps, pull.id);
      finished += 1;
    } else {
      await producer.enqueue(pull, taskIds);
      enqueued += 1;
    }
  }
  return { enqueued, finished };
}

export function startPullReconciler(
  deps: CaseServiceDeps,
  producer: PullFlowProducer,
  connection: () => ConnectionOptions,
  prefix: string,
  everyMs: number,
  /** Other work kept in step the same way (uploads waiting for ingest); answers how many were re-queued. */
  requeueUploads: () => Promise<number> = async () => 0,
): { queue: Queue; worker: Worker } {
  const queue = new Queue(QUEUES.reconcile, { connection: connection(), prefix });
  queue.on('error', () => undefined);
  queue
    .upsertJobScheduler('pull-reconcile-schedule', { every: everyMs }, { name: 'reconcile', data: {}, opts: { removeOnComplete: 50, removeOnFail: 200 } })
    .catch((err: unknown) => logger.warn('reconcile schedule not written', errorFields(err)));
  const worker = new Worker(
    QUEUES.reconcile,
    async (job) =>
      withLogContext({ jobId: `${QUEUES.reconcile}:${job.id ?? ''}` }, async () => {
        const result = { ...(await reconcilePulls(deps, producer)), uploads: await requeueUploads() };
        if (result.enqueued + result.finished + result.uploads > 0) logger.info('pulls and uploads reconciled', { counts: result });
        return result;
      }),
    { connection: connection(), prefix, concurrency: 1 },
  );
  worker.on('error', () => undefined);
  return { queue, worker };
}
