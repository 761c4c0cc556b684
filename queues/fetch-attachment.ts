import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { errorFields, logger, withLogContext } from '../src/log';
import { fetchAttachment } from '../src/pull/attachment-fetcher';
import type { PullWorkerDeps } from '../src/pull/pull-deps';
import { QUEUES } from './names';

/**
 * Queue `fetch-attachment`: one job per attachment (documents are few, and large): streams it
 * into the content-addressed blob store and checks it against the declared size and hash.
 * Jobs join the pull's `assemble-case` parent, which therefore waits for them.
 */
export const FetchAttachmentPayload = z.object({ attachmentId: z.uuid() }).strict();
export type FetchAttachmentPayload = z.infer<typeof FetchAttachmentPayload>;

export const attachmentJobId = (attachmentId: string, attempt: number): string => `att-${attachmentId}-${attempt}`;

export function createAttachmentQueue(connection: ConnectionOptions, prefix: string): Queue<FetchAttachmentPayload> {
  const queue = new Queue<FetchAttachmentPayload>(QUEUES.fetchAttachment, { connection, prefix });
  queue.on('error', () => undefined);
  return queue;
}

/** Adds attachment jobs (idempotent per pull attempt), as children of the pull's parent job when given. */
export async function enqueueAttachments(
  queue: Queue<FetchAttachmentPayload>,
  attachmentIds: readonly string[],
  attempt: number,
  parent?: { id: string; queue: string },
): Promise<void> {
  await queue.addBulk(
    attachmentIds.map((attachmentId) => ({
      name: 'fetch',
      data: { attachmentId },
      opts: {
        jobId: attachmentJobId(attachmentId, attempt),
        attempts: 4,
        backoff: { type: 'exponential', delay: 3000 },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
        ...(parent ? { parent, ignoreDependencyOnFailure: true } : {}),
      },
    })),
  );
}

export function startFetchAttachmentWorker(
  deps: PullWorkerDeps,
  connection: () => ConnectionOptions,
  prefix: string,
  options: { concurrency: number; lockDurationMs: number },
): Worker<FetchAttachmentPayload> {
  const worker = new Worker<FetchAttachmentPayload>(
    QUEUES.fetchAttachment,
    async (job) =>
      withLogContext({ jobId: `${QUEUES.fetchAttachment}:${job.id ?? ''}` }, async () => {
        const { attachmentId } = FetchAttachmentPayload.parse(job.data);
        return fetchAttachment(deps, attachmentId, job.attemptsMade + 1 >= (job.opts.attempts ?? 1));
      }),
    { connection: connection(), prefix, concurrency: options.concurrency, lockDuration: options.lockDurationMs, stalledInterval: options.lockDurationMs },
  );
  worker.on('failed', (job, err) => logger.warn('attachment job failed', { jobId: job?.id, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
