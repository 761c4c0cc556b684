import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { Queue, type Job } from 'bullmq';
import IORedis from 'ioredis';
import { enqueueAttachments, startFetchAttachmentWorker, type FetchAttachmentPayload } from '../../queues/fetch-attachment';
import { QUEUES } from '../../queues/names';
import { RedisRateLimiter } from '../../src/fhir';
import { logger } from '../../src/log';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import type { SandboxServer } from '../../src/sandbox';
import type { TestDatabase } from '../support/postgres';
import { pendingBinaryDocument } from '../support/pull-task';
import { eventually, jobState } from '../support/service';
import { startForFile } from '../support/for-file';
import { TEST_REDIS_URL } from '../support/redis-url';
import { startPullWorkerWorld } from '../support/pull-worker-world';

/**
 * A fetch-attachment job still waiting for its endpoint's only limiter slot when the process begins to
 * stop (`PullWorkerDeps.stopping`) sends nothing: its request is withdrawn, the job is handed back to
 * the queue (delayed to run at once, no attempt spent), the attachment stays `pending` as it was (no
 * attempt counted, no error), and the job's next run fetches it. Real PostgreSQL, Redis (own queue
 * prefix), a sandbox EHR over HTTP, and the queue's own worker (`startFetchAttachmentWorker`).
 */
let t: TestDatabase;
let ehr: SandboxServer;
let redis: IORedis;
let fhirKeyPrefix: string;
let deps: PullWorkerDeps;

const PDF = Buffer.from('%PDF-1.4\n% a referral letter\n%%EOF\n');
const WORKER_OPTIONS = { concurrency: 1, lockDurationMs: 30_000, maxPauseWaitMs: 0 };

startForFile(() => startPullWorkerWorld({ maxAttachmentBytes: 4096 }), (w) => ({ t, ehr, redis, deps, fhirKeyPrefix } = w));

beforeAll(async () => {
  await ehr.load([{ resourceType: 'Binary', id: 'b1', contentType: 'application/pdf', data: PDF.toString('base64') }]);
});

async function attachmentRow(id: string): Promise<Record<string, unknown> | undefined> {
  return (await t.db.query<Record<string, unknown>>('SELECT state, attempts, error, blob_sha256, updated_at FROM attachments WHERE id = $1', [id])).rows[0];
}

it('a job waiting for its endpoint slot when the stop fires is handed back unsent; its next run fetches the document', async () => {
  const { id, endpointId } = await pendingBinaryDocument(t.db, ehr.baseUrl);
  const before = await attachmentRow(id);
  expect(before).toMatchObject({ state: 'pending', attempts: 0, error: null });
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(TEST_REDIS_URL);
  const queue = new Queue<FetchAttachmentPayload>(QUEUES.fetchAttachment, { connection, prefix });
  // Another process holds the endpoint's one slot.
  const other = new RedisRateLimiter({ redis, keyPrefix: fhirKeyPrefix, endpointId, limits: { maxRequestsPerSecond: 1000, maxConcurrency: 1 } });
  const held = await other.acquire();
  // Spied after the other process's slot is taken: the worker's own wait for it.
  const acquiring = jest.spyOn(RedisRateLimiter.prototype, 'acquire');
  const info = jest.spyOn(logger, 'info');
  let job: Job<FetchAttachmentPayload> | undefined;
  try {
    const stop = new AbortController();
    const stopping = startFetchAttachmentWorker({ ...deps, stopping: stop.signal }, () => connection, prefix, WORKER_OPTIONS);
    await enqueueAttachments(queue, [{ id, inline: false }], 1);
    const jobs = await queue.getJobs(['waiting', 'active']);
    job = jobs[0];
    if (!job?.id) throw new Error('no attachment job');
    const jobId = job.id;
    // Taken: its download waits for the slot it cannot get.
    await jobState(queue, jobId, 'active');
    await eventually(async () => acquiring.mock.calls.length, (n) => n >= 1, 5_000);
    // As RunningWorkers.close does: the stop fires, then the worker closes, waiting for its jobs.
    stop.abort();
    await stopping.close();
    await held.lease.release();

    expect(ehr.requestCount('GET /Binary/*')).toBe(0);
    expect(await queue.getJobState(jobId)).toBe('delayed');
    expect((await queue.getJob(jobId))?.attemptsMade).toBe(0);
    expect(info).toHaveBeenCalledWith('attachment job handed back at shutdown', { attachmentId: id });
    // Left as it was: pending, no attempt counted, no error (nothing for a next run to step around).
    expect(await attachmentRow(id)).toEqual(before);
    expect(await other.inFlight()).toBe(0);

    // The next worker (no stop) runs the same job at once and fetches the document.
    const next = startFetchAttachmentWorker(deps, () => connection, prefix, WORKER_OPTIONS);
    try {
      await jobState(queue, jobId, 'completed');
    } finally {
      await next.close();
    }
    expect((await queue.getJob(jobId))?.returnvalue).toBe('fetched');
    expect(ehr.requestCount('GET /Binary/*')).toBe(1);
    expect(await attachmentRow(id)).toMatchObject({ state: 'fetched', attempts: 1, error: null, blob_sha256: expect.any(String) });
  } finally {
    info.mockRestore();
    acquiring.mockRestore();
    await held.lease.release();
    await queue.close();
    await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  }
}, 30_000);
