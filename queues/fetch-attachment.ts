import { createHash } from 'node:crypto';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { ATTACHMENT_JOB_BACKOFF_MS } from '../src/config';
import { errorFields, logger } from '../src/log';
import { fetchAttachment } from '../src/pull/attachment-fetcher';
import { fetchInlineAttachments } from '../src/pull/inline-attachments';
import type { PullWorkerDeps } from '../src/pull/pull-deps';
import { markPullRunningForAttachments } from '../src/pull/pull-repository';
import { absentJobIds } from './absent-jobs';
import { QUEUES } from './names';
import { resumableJobLock } from './resumable';
import { runWaitingIfPaused } from './paused-endpoint';
import { handJobBack } from './hand-back';
import { runJob } from './run-job';

/**
 * Queue `fetch-attachment`: one job per attachment URL (documents are few, and large), streamed
 * into the content-addressed blob store and checked against the declared size and hash; and one job
 * per batch of inline attachments (base64 data already in the pulled resources: a page of documents
 * can carry hundreds of small ones, which as one job each cost more in queue work than in storing).
 * Jobs join the pull's `assemble-case` parent, which therefore waits for them. A job starting marks
 * its pull `running` when it is still `queued` (a retry that only fetches documents again).
 *
 * When the process begins to stop (`deps.stopping`), a URL job whose request is not sent yet (waiting
 * for its endpoint's limiter slot, token or a retry's backoff) withdraws it and is handed back
 * (hand-back.ts: delayed to run at once, no attempt spent), its attachment still `pending`; a download
 * already under way is waited for (a download cut short cannot resume).
 */
export const FetchAttachmentPayload = z.union([
  z.object({ attachmentId: z.uuid(), /** When the job first waited for its paused endpoint (epoch ms). */ pausedSince: z.int().min(0).optional() }).strict(),
  z.object({ attachmentIds: z.array(z.uuid()).min(1).max(1000) }).strict(),
]);
export type FetchAttachmentPayload = z.infer<typeof FetchAttachmentPayload>;

/** Inline attachments per job. */
const INLINE_PER_JOB = 250;

export const attachmentJobId = (attachmentId: string, attempt: number): string => `att-${attachmentId}-${attempt}`;

/** A batch's job id: derived from its attachment ids, so adding the same batch again is a no-op. */
const inlineBatchJobId = (attachmentIds: readonly string[], attempt: number): string =>
  `att-inline-${createHash('sha256').update(attachmentIds.join(',')).digest('hex').slice(0, 32)}-${attempt}`;

export function createAttachmentQueue(connection: ConnectionOptions, prefix: string): Queue<FetchAttachmentPayload> {
  const queue = new Queue<FetchAttachmentPayload>(QUEUES.fetchAttachment, { connection, prefix });
  queue.on('error', () => undefined);
  return queue;
}

/** An attachment job's payload and id (ids derived: adding the same job twice adds it once). */
export interface AttachmentJobSpec {
  readonly data: FetchAttachmentPayload;
  readonly jobId: string;
}

/** The jobs that fetch `attachments` in a pull attempt: one per URL, one per batch of up to {@link INLINE_PER_JOB} inline ones. */
export function attachmentJobSpecs(attachments: readonly { readonly id: string; readonly inline: boolean }[], attempt: number): AttachmentJobSpec[] {
  const jobs: AttachmentJobSpec[] = attachments
    .filter((a) => !a.inline)
    .map((a) => ({ data: { attachmentId: a.id }, jobId: attachmentJobId(a.id, attempt) }));
  const inline = attachments.filter((a) => a.inline).map((a) => a.id);
  for (let i = 0; i < inline.length; i += INLINE_PER_JOB) {
    const attachmentIds = inline.slice(i, i + INLINE_PER_JOB);
    jobs.push({ data: { attachmentIds }, jobId: inlineBatchJobId(attachmentIds, attempt) });
  }
  return jobs;
}

/** Options of an attachment job (its retries, from `backoffMs` doubling; kept a day, failures a week). */
export const attachmentJobOptions = (jobId: string, backoffMs = ATTACHMENT_JOB_BACKOFF_MS) => ({
  jobId,
  attempts: 4,
  backoff: { type: 'exponential', delay: backoffMs },
  removeOnComplete: { age: 86_400 },
  removeOnFail: { age: 7 * 86_400 },
});

/**
 * Adds attachment jobs (idempotent per pull attempt), as children of the pull's parent job when
 * given: one per URL attachment, one per batch of up to {@link INLINE_PER_JOB} inline ones.
 * Another page or query can find the same attachment: a job already in the queue is not added
 * again ({@link absentJobIds}).
 */
export async function enqueueAttachments(
  queue: Queue<FetchAttachmentPayload>,
  attachments: readonly { readonly id: string; readonly inline: boolean }[],
  attempt: number,
  parent?: { id: string; queue: string },
  backoffMs = ATTACHMENT_JOB_BACKOFF_MS,
): Promise<void> {
  const specs = attachmentJobSpecs(attachments, attempt);
  const absent = await absentJobIds(queue, specs.map(({ jobId }) => jobId));
  const fresh = specs.filter(({ jobId }) => absent.has(jobId));
  if (fresh.length === 0) return;
  await queue.addBulk(
    fresh.map(({ data, jobId }) => ({
      name: 'fetch',
      data,
      opts: { ...attachmentJobOptions(jobId, backoffMs), ...(parent ? { parent, ignoreDependencyOnFailure: true } : {}) },
    })),
  );
}

export function startFetchAttachmentWorker(
  deps: PullWorkerDeps,
  connection: () => ConnectionOptions,
  prefix: string,
  options: { concurrency: number; lockDurationMs: number; maxPauseWaitMs: number },
): Worker<FetchAttachmentPayload> {
  const worker = new Worker<FetchAttachmentPayload>(
    QUEUES.fetchAttachment,
    async (job, token) =>
      runJob(QUEUES.fetchAttachment, job, async () => {
        const payload = FetchAttachmentPayload.parse(job.data);
        // Its pull is under way (a retry fetching only documents again runs no task to say so).
        await markPullRunningForAttachments(deps.db, 'attachmentIds' in payload ? payload.attachmentIds : [payload.attachmentId]);
        const isLastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if ('attachmentIds' in payload) return fetchInlineAttachments(deps, payload.attachmentIds, isLastAttempt);
        const outcome = await runWaitingIfPaused(job, token, payload, options.maxPauseWaitMs, (waitsIfPaused) =>
          fetchAttachment(deps, payload.attachmentId, { isLastAttempt, waitsIfPaused }),
        );
        if (outcome === 'handed-back') {
          return handJobBack(job, token, { message: 'attachment job handed back at shutdown', ids: { attachmentId: payload.attachmentId } });
        }
        return outcome;
      }),
    { connection: connection(), prefix, concurrency: options.concurrency, ...resumableJobLock(options.lockDurationMs) },
  );
  worker.on('failed', (job, err) => logger.warn('attachment job failed', { jobId: job?.id, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
