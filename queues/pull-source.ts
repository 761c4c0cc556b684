import { Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import { isPermanentFhirError } from '../src/fhir';
import { errorFields, logger, withLogMessageOf } from '../src/log';
import type { PullWorkerDeps } from '../src/pull/pull-deps';
import { runPullTask } from '../src/pull/pull-task-runner';
import { enqueueAttachments } from './fetch-attachment';
import { QUEUES } from './names';
import { resumableJobLock } from './resumable';
import { runWaitingIfPaused } from './paused-endpoint';
import { handJobBack } from './hand-back';
import { PullSourcePayload } from './pull-flow';
import { runJob } from './run-job';

/**
 * Queue `pull-source`: one job per (pull attempt, source, query) pages to the end of its results.
 * Small payload (ids); the processor re-reads the task and resumes from its committed cursor, so a
 * job that runs twice or after a crash stores nothing twice. Permanent FHIR errors fail the job at
 * once (UnrecoverableError); others are retried with backoff (see pull-flow.ts).
 *
 * When the process begins to stop (`deps.stopping`), a running job ends at its next page boundary and
 * is handed back (hand-back.ts: delayed to run at once, no attempt spent), its task queued again at its
 * committed cursor: the stop does not wait for the query's last page, and another worker resumes it.
 */
export interface PullSourceOptions {
  readonly concurrency: number;
  readonly lockDurationMs: number;
  /** How long a job may wait, in all, for its endpoint's circuit breaker to let it through (see paused-endpoint.ts). */
  readonly maxPauseWaitMs: number;
  /** First delay between attempts of the attachment jobs the queries find (`ATTACHMENT_JOB_BACKOFF_MS`). */
  readonly attachmentBackoffMs?: number;
}

export function startPullSourceWorker(
  deps: PullWorkerDeps,
  connection: () => ConnectionOptions,
  prefix: string,
  attachments: Queue,
  options: PullSourceOptions,
): Worker<PullSourcePayload> {
  const worker = new Worker<PullSourcePayload>(
    QUEUES.pullSource,
    async (job, token) =>
      runJob(QUEUES.pullSource, job, async () => {
        const payload = PullSourcePayload.parse(job.data);
        const { taskId, attempt } = payload;
        const isLastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        try {
          const outcome = await runWaitingIfPaused(job, token, payload, options.maxPauseWaitMs, (waitsIfPaused) =>
            runPullTask(deps, taskId, { isLastAttempt, waitsIfPaused }, async (found) => {
              await enqueueAttachments(attachments, found, attempt, job.parent?.id ? { id: job.parent.id, queue: job.parent.queueKey } : undefined, options.attachmentBackoffMs);
            }),
          );
          if (outcome.state === 'handed-back') {
            return await handJobBack(job, token, { message: 'pull job handed back at shutdown', ids: { taskId, pages: outcome.pages } });
          }
          return outcome.state;
        } catch (err) {
          // Logged (`pull job failed`) as the error itself would be: with its log message, when it has one.
          if (isPermanentFhirError(err)) throw withLogMessageOf(new UnrecoverableError(err instanceof Error ? err.message : 'permanent error'), err);
          throw err;
        }
      }),
    {
      connection: connection(),
      prefix,
      concurrency: options.concurrency,
      // A job whose worker was killed resumes from its cursor; being picked up again is not a failure.
      ...resumableJobLock(options.lockDurationMs),
    },
  );
  worker.on('failed', (job, err) => logger.warn('pull job failed', { jobId: job?.id, attempt: job?.attemptsMade, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
