import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { CaseServiceDeps } from '../src/cases/case-service';
import { logger } from '../src/log';
import { finishPull, recordPullAssemblyFailed } from '../src/pull/finish-pull';
import { pullAssemblyTrigger } from '../src/pull/pull-progress';
import { pullsAwaitingAssembly } from '../src/pull/pulls-awaiting-assembly';
import { pendingAttachmentsOf, unfinishedPulls } from '../src/pull/pull-repository';
import { tasksToEnqueue } from '../src/pull/pull-service';
import { keepJobScheduler } from './keep-scheduled';
import { QUEUES } from './names';
import type { PullFlowProducer } from './pull-flow';
import { runJob } from './run-job';

/** What one reconciliation did. */
export interface ReconcileResult {
  /** Pulls whose flow was added again (it was gone) or whose unfinished tasks were re-added to it. */
  readonly enqueued: number;
  /** Pulls whose parent job had failed for good and was run once more. */
  readonly retried: number;
  /** Pulls decided from their tasks because their parent failed for good again after that run. */
  readonly finished: number;
  /** Finished pulls whose assembly was run again: its parent job gone (added alone) or failed for good (run once more). */
  readonly assembliesResumed: number;
  /** Finished pulls whose assembly failed for good again, or ended without a bundle: the case managers told (`assembly.failed`). */
  readonly assembliesGivenUp: number;
}

/**
 * Queue `pull-reconcile`: Postgres is the system of record and Redis only carries work, so this
 * repeatable job makes sure every unfinished pull has its flow in Redis (after Redis lost data, or
 * an API process died between committing a pull and enqueuing it). Per unfinished pull, by where
 * its flow's parent (`assemble-case`) stands:
 * - gone: the flow is added again with every task not complete AND every attachment still pending
 *   of the complete tasks (their jobs went with the flow), so the pull ends, and the bundle is
 *   assembled, only once those are fetched too;
 * - waiting: the unfinished tasks whose job is not in Redis are added to it under their own job
 *   ids, so a healthy flow is left as it is (a job that exists is never added again: BullMQ would put
 *   one that failed for good back among the parent's pending children, see `withoutJobs`); a pull
 *   whose tasks are all done is waiting for its attachment jobs and is left alone (it is not
 *   declared finished before its documents are in);
 * - failed for good (say the database was down through every attempt): it is run once more; if that
 *   run fails too, the pull is decided from its tasks (the case moves on; the bundle can be rebuilt);
 * - completed: nothing (the parent finished the pull; a retry has a new attempt and a new parent).
 * Then per finished pull still waiting for its assembly, with no alert recorded
 * (`pullsAwaitingAssembly`: its parent finished the pull and then failed for good without recording
 * `assembly.failed`, the database being down through its last attempts, or Redis lost it while it
 * ran): its parent gone, it is added again alone (it assembles; finishing the pull again is a no-op);
 * failed for good, it is run once more; failed again after that, or ended without a bundle, the case
 * managers are told (`assembly.failed`, once per trigger), as the parent's own last attempt would have.
 * Uploads whose ingest job Redis lost are re-queued the same way, and a case record a source change
 * outdated is assembled again when the change's own assembly never ended (`reassemblerOfOutdatedRecords`).
 */
export async function reconcilePulls(deps: CaseServiceDeps, producer: PullFlowProducer): Promise<ReconcileResult> {
  let enqueued = 0;
  let retried = 0;
  let finished = 0;
  for (const pull of await unfinishedPulls(deps.db)) {
    const state = await producer.flowState(pull);
    if (state === 'missing') {
      const attachments = await pendingAttachmentsOf(deps.db, { completeTasksOfPull: pull.id });
      await producer.enqueue(pull, await tasksToEnqueue(deps.db, pull), attachments);
      logger.warn('pull flow was missing from Redis; added again', { pullId: pull.id, attempt: pull.attempt, counts: { attachments: attachments.length } });
      enqueued += 1;
    } else if (state === 'failed') {
      if ((await producer.retryParent(pull)) === 'retried') retried += 1;
      else {
        // Its one more run failed too: decide the pull from its tasks (no retry loop), but leave the
        // case where it is (records_complete means the bundle is there) and tell the case managers:
        // the bundle is rebuilt on demand (POST …/bundle/rebuild) once the cause is fixed.
        // The alert goes with the pull's state, in one transaction: a crash between them cannot lose it.
        await finishPull(deps, pull.id, { moveCase: false, event: { type: 'assembly.failed', data: { caseId: pull.caseId, pullId: pull.id, trigger: pullAssemblyTrigger(pull.id, pull.attempt) } } });
        logger.error('pull finished without its assembly: the assemble job failed for good twice', { caseId: pull.caseId, pullId: pull.id });
        finished += 1;
      }
    } else if (state === 'pending') {
      // Only the tasks whose job Redis lost: one that exists is running, waiting, done or failed for good.
      const taskIds = await producer.withoutJobs(pull, await tasksToEnqueue(deps.db, pull));
      if (taskIds.length > 0) {
        await producer.enqueue(pull, taskIds);
        enqueued += 1;
      }
    }
  }
  return { enqueued, retried, finished, ...(await resumeAwaitedAssemblies(deps, producer)) };
}

/** The second look of {@link reconcilePulls}: finished pulls whose assembly never ended and was never reported. */
async function resumeAwaitedAssemblies(deps: CaseServiceDeps, producer: PullFlowProducer): Promise<{ assembliesResumed: number; assembliesGivenUp: number }> {
  let assembliesResumed = 0;
  let assembliesGivenUp = 0;
  for (const pull of await pullsAwaitingAssembly(deps.db)) {
    const state = await producer.flowState(pull);
    // Running or waiting: it assembles (or records its failure) on its own.
    if (state === 'pending') continue;
    if (state === 'missing') {
      await producer.enqueue(pull, []);
      logger.warn('the assembly of a finished pull was missing from Redis; added again', { caseId: pull.caseId, pullId: pull.id, attempt: pull.attempt });
      assembliesResumed += 1;
      continue;
    }
    if (state === 'failed' && (await producer.retryParent(pull)) === 'retried') {
      logger.warn('the assembly of a finished pull failed for good without saying so; run once more', { caseId: pull.caseId, pullId: pull.id, attempt: pull.attempt });
      assembliesResumed += 1;
      continue;
    }
    const reason = state === 'failed' ? 'the assembly failed for good, also when run once more by the reconciler' : 'the assembly job ended without storing a bundle';
    if (await recordPullAssemblyFailed(deps.db, { caseId: pull.caseId, pullId: pull.id, trigger: pull.trigger, pullState: pull.state }, reason)) {
      logger.error('pull finished without its assembly', { caseId: pull.caseId, pullId: pull.id, attempt: pull.attempt });
      assembliesGivenUp += 1;
    }
  }
  return { assembliesResumed, assembliesGivenUp };
}

export function startPullReconciler(
  deps: CaseServiceDeps,
  producer: PullFlowProducer,
  connection: () => ConnectionOptions,
  prefix: string,
  everyMs: number,
  /** Other work kept in step the same way (uploads waiting for ingest); answers how many were re-queued. */
  requeueUploads: () => Promise<number> = async () => 0,
  /** Case records a source change outdated and no assembly renewed (its request's process died): answers how many were assembled again. */
  reassembleOutdated: () => Promise<number> = async () => 0,
): { queue: Queue; worker: Worker } {
  const queue = new Queue(QUEUES.reconcile, { connection: connection(), prefix });
  queue.on('error', () => undefined);
  const worker = new Worker(
    QUEUES.reconcile,
    async (job) =>
      runJob(QUEUES.reconcile, job, async () => {
        const result = { ...(await reconcilePulls(deps, producer)), uploads: await requeueUploads(), outdatedRecords: await reassembleOutdated() };
        if (result.enqueued + result.retried + result.finished + result.assembliesResumed + result.assembliesGivenUp + result.uploads + result.outdatedRecords > 0) logger.info('pulls and uploads reconciled', { counts: result });
        return result;
      }),
    { connection: connection(), prefix, concurrency: 1 },
  );
  worker.on('error', () => undefined);
  keepJobScheduler(queue, 'pull-reconcile-schedule', everyMs, { name: 'reconcile', data: {}, opts: { removeOnComplete: 50, removeOnFail: 200 } }, worker);
  return { queue, worker };
}
