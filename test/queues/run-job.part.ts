import { randomBytes } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { runJob, runningJobs } from '../../queues/run-job';
import { errorFields, logger, type LogMessage } from '../../src/log';
import { bullConnectionOptions } from '../../src/redis';
import { CaptureTransport } from '../support/capture-log';
import { TEST_REDIS_URL } from '../support/redis-url';
import { eventually } from '../support/service';

/**
 * What a failed job leaves in Redis (BullMQ's `failedReason` and `stacktrace`) is what the log would
 * write of its error, never the error's own text: real Redis, a real BullMQ worker, own prefix.
 */
const PHI = ['Zinnia', 'Marrowvale', '448812'];
/** A server's words quoting what it was asked (what the log's scrubber takes out: what a message quotes). */
const SERVER_TEXT = "the EHR answered: no patient 'Zinnia Marrowvale, MRN 448812' here";

/** An error of ours that says what happened in its own words (`LogMessage`), apostrophes included. */
class OwnWordsError extends Error implements LogMessage {
  readonly logMessage = "the server's paging does not end: stopped after 3 pages";
}

const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const connection = bullConnectionOptions(TEST_REDIS_URL);
const QUEUE = 'run-job-probe';
const queue = new Queue(QUEUE, { connection, prefix });
const capture = new CaptureTransport();
/** What each job's work does, by job name. */
const work = new Map<string, (job: Job, token: string | undefined) => Promise<unknown>>();
const failedWith = new Map<string, unknown>();
let worker: Worker;

beforeAll(async () => {
  logger.add(capture);
  worker = new Worker(QUEUE, async (job, token) => runJob(QUEUE, job, () => (work.get(job.name) ?? (async () => undefined))(job, token)), { connection, prefix, concurrency: 4 });
  worker.on('failed', (job, err) => void (job?.id !== undefined && failedWith.set(job.id, err)));
  await worker.waitUntilReady();
});

afterAll(async () => {
  logger.remove(capture);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
});

async function ended(name: string, attempts = 1): Promise<Job> {
  const job = await queue.add(name, {}, { attempts, backoff: { type: 'fixed', delay: 10 } });
  const id = job.id ?? '';
  await eventually(() => queue.getJobState(id), (s) => s === 'failed' || s === 'completed' || s === 'delayed', 15_000);
  return (await queue.getJob(id)) as Job;
}

const holdsPhi = (text: string): boolean => PHI.some((p) => text.includes(p));

it("keeps a failed job's message and stack in Redis without what the error quoted", async () => {
  const original = new Error(SERVER_TEXT);
  work.set('quotes', async () => {
    throw original;
  });
  const job = await ended('quotes');
  expect(await job.getState()).toBe('failed');
  expect(job.failedReason).toBe(errorFields(original).errorMessage);
  expect(holdsPhi(job.failedReason)).toBe(false);
  expect(job.stacktrace).toHaveLength(1);
  const stack = job.stacktrace?.[0];
  expect(holdsPhi(stack ?? '')).toBe(false);
  // Where it was thrown is kept: the frames, under the logged message.
  expect(stack?.startsWith(`Error: ${errorFields(original).errorMessage}\n`)).toBe(true);
  expect(stack).toMatch(/\n\s+at .*run-job\.part\.ts/);
  // The failed listener logs what it would have logged for the error thrown.
  expect(errorFields(failedWith.get(job.id ?? ''))).toEqual(errorFields(original));
});

it("logs a Redis reply's code and meaning for a job failed by it, as for the reply itself", async () => {
  // As ioredis makes it (keep-scheduled.part.ts has Redis refuse for real).
  const reply = Object.assign(new Error("READONLY You can't write against a read only replica."), { name: 'ReplyError' });
  work.set('readonly', async () => {
    throw reply;
  });
  const job = await ended('readonly');
  expect(job.failedReason).toBe('Redis refused a write: it is a read-only replica (a failover, or REPLICAOF)');
  expect(errorFields(failedWith.get(job.id ?? ''))).toEqual({ errorName: 'ReplyError', errorCode: 'READONLY', errorMessage: job.failedReason });
});

it("keeps the error's other properties in memory, for a backoff strategy or a failed listener", async () => {
  const original = Object.assign(new Error(SERVER_TEXT), { code: 'ECONNRESET', retryAfterMs: 2000 });
  work.set('properties', async () => {
    throw original;
  });
  const job = await ended('properties');
  expect(failedWith.get(job.id ?? '')).toMatchObject({ code: 'ECONNRESET', retryAfterMs: 2000 });
  expect(errorFields(failedWith.get(job.id ?? ''))).toEqual({ ...errorFields(original), errorCode: 'ECONNRESET' });
});

it('still ends the job at once for an UnrecoverableError, its message scrubbed', async () => {
  let runs = 0;
  work.set('unrecoverable', async () => {
    runs++;
    throw new UnrecoverableError(SERVER_TEXT);
  });
  const job = await ended('unrecoverable', 3);
  expect(await job.getState()).toBe('failed');
  expect(runs).toBe(1);
  expect(job.attemptsMade).toBe(1);
  expect(holdsPhi(job.failedReason)).toBe(false);
  expect(failedWith.get(job.id ?? '')).toBeInstanceOf(UnrecoverableError);
});

it("keeps an error's own words whole, apostrophes and all", async () => {
  const original = new OwnWordsError(SERVER_TEXT);
  work.set('own-words', async () => {
    throw original;
  });
  const job = await ended('own-words');
  expect(job.failedReason).toBe("the server's paging does not end: stopped after 3 pages");
  expect(errorFields(failedWith.get(job.id ?? ''))).toEqual({ errorName: 'Error', errorMessage: "the server's paging does not end: stopped after 3 pages" });
  expect(failedWith.get(job.id ?? '')).toBeInstanceOf(OwnWordsError);
});

it("passes BullMQ's own control flow on: a job moved to delayed stays delayed, not failed", async () => {
  work.set('delayed', async (job, token) => {
    await job.moveToDelayed(Date.now() + 60_000, token);
    throw new DelayedError();
  });
  const job = await ended('delayed');
  expect(await job.getState()).toBe('delayed');
  expect(job.failedReason).toBeUndefined();
  await job.remove();
});

it("runs the work with the job's id as its log context", async () => {
  work.set('logs', async () => {
    logger.warn('probe inside a job');
    throw new Error('done');
  });
  const job = await ended('logs');
  const line = capture.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['message'] === 'probe inside a job');
  expect(line).toMatchObject({ jobId: `${QUEUE}:${job.id ?? ''}` });
});

it('counts the jobs whose work is under way, until each ends, however it ends', async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  let started: () => void = () => undefined;
  const running = new Promise<void>((resolve) => (started = resolve));
  work.set('held', async () => {
    started();
    await held;
    throw new Error('ended');
  });
  const before = runningJobs();
  const job = await queue.add('held', {});
  await running;
  expect(runningJobs()).toBe(before + 1);
  release();
  await eventually(() => queue.getJobState(job.id ?? ''), (s) => s === 'failed', 15_000);
  expect(runningJobs()).toBe(before);
});
