import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { keepJobScheduler } from '../../queues/keep-scheduled';
import { bullConnectionOptions } from '../../src/redis';
import { logger } from '../../src/log';
import { CaptureTransport } from '../support/capture-log';
import { eventually } from '../support/service';
import { TEST_REDIS_URL } from '../support/redis-url';
import { startOwnRedis } from '../../drills/support/redis-server';

/**
 * A repeating schedule lives in Redis only: when Redis loses its data the schedule is written back by
 * the next check of a running process, and its jobs run again. Real Redis, own queue prefix.
 */

it('writes a schedule back after Redis lost it, and its jobs run again', async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(TEST_REDIS_URL);
  const queue = new Queue('sweep', { connection, prefix });
  const capture = new CaptureTransport();
  let runs = 0;
  const worker = new Worker('sweep', async () => void (runs += 1), { connection, prefix });
  try {
    keepJobScheduler(queue, 'sweep-schedule', 200, { name: 'sweep', data: {}, opts: { removeOnComplete: true } }, worker);
    await eventually(async () => runs, (n) => n >= 1, 10_000);
    // Redis loses everything of the queue: the schedule, its next job, the history. (Not checked
    // by reading the scheduler right after: a check of the keeper, every 200 ms, may already have
    // written it back; its warning says it found the schedule missing.)
    logger.add(capture);
    await queue.obliterate({ force: true });
    const before = runs;
    await eventually(async () => capture.lines.filter((l) => l.includes('job schedule was missing from Redis')).length, (n) => n >= 1, 10_000);
    await eventually(async () => queue.getJobScheduler('sweep-schedule'), (s) => s !== undefined && s !== null, 10_000);
    await eventually(async () => runs, (n) => n > before, 10_000);
  } finally {
    logger.remove(capture);
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
});

it('after an outage that lost the schedule, checks once and warns once, not once per missed check', async () => {
  // A private redis-server: the test stops it (never the shared one).
  const redis = await startOwnRedis();
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(redis.url);
  const queue = new Queue('sweep', { connection, prefix });
  queue.on('error', () => undefined);
  const worker = new Worker('sweep', async () => undefined, { connection, prefix });
  worker.on('error', () => undefined);
  const capture = new CaptureTransport();
  try {
    keepJobScheduler(queue, 'sweep-schedule', 50, { name: 'sweep', data: {}, opts: { removeOnComplete: true } }, worker);
    await eventually(async () => queue.getJobScheduler('sweep-schedule'), (s) => Boolean(s), 10_000);
    logger.add(capture);
    // Down for 1 s (some 20 checks due), back empty: the checks kept waiting would all find it missing at once.
    await redis.restart(1000, { lose: true });
    const rewritten = await eventually(async () => queue.getJobScheduler('sweep-schedule'), (s) => Boolean(s), 10_000);
    // Some 20 check periods after the schedule came back (its own count of the jobs made since, one
    // per 50 ms), so that a late duplicate warning is seen too.
    const from = rewritten?.iterationCount ?? 0;
    await eventually(async () => (await queue.getJobScheduler('sweep-schedule'))?.iterationCount ?? 0, (n) => n >= from + 20, 10_000);
    expect(capture.lines.filter((l) => l.includes('job schedule was missing from Redis'))).toHaveLength(1);
  } finally {
    logger.remove(capture);
    await worker.close(true);
    await queue.close();
    await redis.stop();
  }
});

it('warns once that the schedule is not written while Redis refuses writes, not once per check, and says when it is back', async () => {
  // A private redis-server: the test turns it into a replica (never the shared one).
  const redis = await startOwnRedis();
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(redis.url);
  const queue = new Queue('sweep', { connection, prefix });
  queue.on('error', () => undefined);
  // Only its closing matters to the keeper: it takes no job.
  const worker = new Worker('sweep', async () => undefined, { connection, prefix, autorun: false });
  const admin = new IORedis(redis.url, { maxRetriesPerRequest: 1 });
  const capture = new CaptureTransport();
  const level = logger.level;
  const logged = (message: string, at: string): number =>
    capture.lines.map((l) => JSON.parse(l) as { message?: unknown; level?: unknown }).filter((l) => l.message === message && l.level === at).length;
  try {
    keepJobScheduler(queue, 'sweep-schedule', 50, { name: 'sweep', data: {}, opts: { removeOnComplete: true } }, worker);
    await eventually(async () => queue.getJobScheduler('sweep-schedule'), (s) => Boolean(s), 10_000);
    // Info too: the line saying the schedule is written again.
    logger.level = 'info';
    logger.add(capture);
    // A failover to an empty replica: the schedule is gone, reads are answered, writes refused (READONLY).
    // Both in one transaction: between two commands a check of the keeper (every 50 ms) could find
    // the schedule missing and write it back before writes were refused.
    await admin.multi().flushall().replicaof('127.0.0.1', '1').exec();
    // Checks go on every 50 ms: each finds the schedule missing and fails to write it.
    const checks = jest.spyOn(queue, 'getJobScheduler');
    await eventually(async () => checks.mock.calls.length, (n) => n >= 6, 10_000);
    await eventually(async () => logged('job schedule not written', 'warn'), (n) => n >= 1, 10_000);
    expect(logged('job schedule not written', 'warn')).toBe(1);
    // Why, in full: Redis's READONLY reply has an apostrophe the scrubber would cut the line at.
    const refused = capture.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['message'] === 'job schedule not written');
    expect(refused).toMatchObject({ errorName: 'ReplyError', errorCode: 'READONLY', errorMessage: 'Redis refused a write: it is a read-only replica (a failover, or REPLICAOF)' });
    // Not written, so not said to be written again.
    expect(logged('job schedule was missing from Redis; written again', 'warn')).toBe(0);
    // Writable again: the next check writes the schedule, and says so once.
    await admin.replicaof('NO', 'ONE');
    await eventually(async () => logged('job schedule checked again', 'info'), (n) => n >= 1, 10_000);
    expect(await queue.getJobScheduler('sweep-schedule')).toBeTruthy();
    expect(logged('job schedule not written', 'warn')).toBe(1);
    expect(logged('job schedule was missing from Redis; written again', 'warn')).toBe(1);
  } finally {
    logger.remove(capture);
    logger.level = level;
    admin.disconnect();
    await worker.close(true);
    await queue.close();
    await redis.stop();
  }
});

it('says nothing is wrong when the process stops before its first write of the schedule', async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(TEST_REDIS_URL);
  const queue = new Queue('sweep', { connection, prefix });
  const worker = new Worker('sweep', async () => undefined, { connection, prefix, autorun: false });
  const capture = new CaptureTransport();
  logger.add(capture);
  try {
    keepJobScheduler(queue, 'sweep-schedule', 60_000, { name: 'sweep', data: {}, opts: { removeOnComplete: true } }, worker);
    // Stopping at once: the worker says it is closing, then the queue's connection closes under the
    // pending write, which fails.
    const workerClosed = worker.close();
    await queue.close();
    await workerClosed;
    expect(await scheduleWritten(prefix)).toBe(false);
    expect(capture.lines.filter((l) => l.includes('job schedule not written'))).toEqual([]);
  } finally {
    logger.remove(capture);
  }
});

/** Whether the schedule reached Redis (read by a queue of its own; the queue's keys are removed after). */
async function scheduleWritten(prefix: string): Promise<boolean> {
  const queue = new Queue('sweep', { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  try {
    return Boolean(await queue.getJobScheduler('sweep-schedule'));
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}
