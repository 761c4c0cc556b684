import { Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { DicomWorkerPool } from '../src/imaging/dicom-worker-pool';
import { errorFields, logger } from '../src/log';
import { AssemblyTooLargeError } from '../src/assembly/assembly-memory';
import { ingestUpload, type IngestDeps, type IngestResult } from '../src/uploads/ingest';
import { ingestWorkDir } from '../src/uploads/ingest-scratch';
import { recordUploadNotIngested } from '../src/uploads/upload-failure';
import { uploadsWaitingForIngest, type UploadWaitingForIngest } from '../src/uploads/upload-repository';
import { QUEUES } from './names';
import { resumableJobLock } from './resumable';
import { runJob } from './run-job';

/**
 * Queue `ingest-upload`: one job per upload (one POST of files): extracts zips, parses DICOM headers
 * (worker thread with a time limit) and PDFs, checks identities, then assembles the case bundle
 * again (see `src/uploads/ingest.ts`).
 * Idempotent: the job id is derived from the upload id, and the processor only works on rows still
 * `received` and assembles once per upload. Uploads not ingested yet when a worker starts, and at
 * each reconciliation (the job was lost with Redis, or never queued, or its assembly was), are
 * queued again.
 */
export const IngestUploadPayload = z.object({ uploadId: z.uuid(), caseId: z.uuid() }).strict();
export type IngestUploadPayload = z.infer<typeof IngestUploadPayload>;

/** Enqueuing the same upload twice adds nothing. */
export const ingestJobId = (uploadId: string): string => `ingest-${uploadId}`;

/** Retry policy: a file the parsers cannot read is a result, not a failure; this covers database or disk trouble. */
export const INGEST_JOB_ATTEMPTS = 5;

/** Producer side (the API, and the worker's start-up re-queue). */
export class UploadIngestQueue {
  private readonly queue: Queue<IngestUploadPayload>;

  constructor(connection: ConnectionOptions, prefix: string) {
    this.queue = new Queue<IngestUploadPayload>(QUEUES.ingestUpload, { connection, prefix });
    this.queue.on('error', () => undefined);
  }

  async enqueue(job: IngestUploadPayload): Promise<void> {
    await this.add(job);
  }

  /**
   * Queues an upload whose ingestion has not ended again (`uploadsWaitingForIngest`). A job of it that
   * failed for good without its failure on record is run once more: its last attempt never got to
   * record it (the database was down then, say), and re-adding the id alone does nothing while
   * BullMQ keeps the failed job. The rerun is a last attempt: a failure now is recorded. An upload
   * whose failure is recorded is not rerun this way (it would fail every reconciliation): a rebuild,
   * or its job expiring, takes its files in.
   */
  async requeue(waiting: UploadWaitingForIngest): Promise<void> {
    const jobId = await this.add({ uploadId: waiting.uploadId, caseId: waiting.caseId });
    if (waiting.notIngested) return;
    if ((await this.queue.getJobState(jobId)) === 'failed') await (await this.queue.getJob(jobId))?.retry('failed');
  }

  private async add(job: IngestUploadPayload): Promise<string> {
    const jobId = ingestJobId(job.uploadId);
    await this.queue.add('ingest', IngestUploadPayload.parse(job), {
      jobId,
      attempts: INGEST_JOB_ATTEMPTS,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 7 * 86_400 },
    });
    return jobId;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/**
 * One attempt of an ingest job. Its last failed attempt, or one that retrying cannot help (a case too
 * large to assemble in this process: no retry), is recorded (upload-failure.ts) before it fails;
 * not one whose DICOM threads were closed under it (the process stopping: shutdown closes the pool
 * only after the worker's running job, so this guards the order, not a path taken today): the file
 * is not at fault, and another worker takes the job again.
 * @param attempts attempts made before this one, and allowed in all
 */
export async function runIngestJob(deps: IngestDeps, job: IngestUploadPayload, attempts: { made: number; allowed: number }): Promise<IngestResult> {
  try {
    return await ingestUpload(deps, job.uploadId);
  } catch (err) {
    const tooLarge = err instanceof AssemblyTooLargeError;
    if (deps.pool.isClosed && !tooLarge) {
      logger.info('ingest cut short: the process is stopping; the job runs again elsewhere', { caseId: job.caseId, uploadId: job.uploadId });
      throw err;
    }
    if (tooLarge || attempts.made + 1 >= attempts.allowed) {
      const reason = tooLarge ? err.detail : `the ingest job failed ${attempts.made + 1} times (${errorFields(err).errorName})`;
      await recordUploadNotIngested(deps.db, job.caseId, job.uploadId, reason).catch((e: unknown) => logger.error('upload failure not recorded', errorFields(e)));
    }
    throw tooLarge ? new UnrecoverableError(err.message) : err;
  }
}

export interface IngestUploadWorker {
  readonly worker: Worker<IngestUploadPayload>;
  /** Enqueues every upload with files still `received` (same job ids: a queued one is left alone); how many. */
  requeueWaiting(): Promise<number>;
  close(force?: boolean): Promise<void>;
}

/** Starts the worker (one upload at a time, one DICOM parsing thread) and re-queues unfinished uploads. */
export function startIngestUploadWorker(
  deps: Omit<IngestDeps, 'pool' | 'workDir'> & { readonly dataDir: string },
  connection: () => ConnectionOptions,
  prefix: string,
  lockDurationMs: number,
): IngestUploadWorker {
  const pool = new DicomWorkerPool({ timeoutMs: deps.uploads.dicomParseTimeoutMs, size: 1 });
  const ingestDeps: IngestDeps = { ...deps, pool, workDir: ingestWorkDir(deps.dataDir) };
  const worker = new Worker<IngestUploadPayload>(
    QUEUES.ingestUpload,
    async (job) =>
      runJob(QUEUES.ingestUpload, job, () =>
        runIngestJob(ingestDeps, IngestUploadPayload.parse(job.data), { made: job.attemptsMade, allowed: job.opts.attempts ?? 1 }),
      ),
    { connection: connection(), prefix, concurrency: 1, ...resumableJobLock(lockDurationMs) },
  );
  worker.on('failed', (job, err) => logger.error('ingest job failed', { jobId: job?.id, ...errorFields(err) }));
  worker.on('error', () => undefined);
  const requeue = new UploadIngestQueue(connection(), prefix);
  const requeueWaiting = async (): Promise<number> => {
    const waiting = await uploadsWaitingForIngest(deps.db);
    for (const job of waiting) await requeue.requeue(job);
    return waiting.length;
  };
  const requeued = requeueWaiting().catch((err: unknown) => logger.warn('ingest re-queue failed', errorFields(err)));
  return {
    worker,
    requeueWaiting,
    async close(force = false) {
      await worker.close(force);
      await requeued;
      await requeue.close().catch(() => undefined);
      await pool.close();
    },
  };
}
