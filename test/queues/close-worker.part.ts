import { Queue, Worker, type Job, type RedisClient } from 'bullmq';
import { startOwnRedis, type OwnRedis } from '../../drills/support/redis-server';
import { closeWorker } from '../../queues/close-worker';
import { bullConnectionOptions } from '../../src/redis';
import { withTimeout } from '../../src/util/with-timeout';

/**
 * A worker stopped right after a Redis outage, while its connections wait to reconnect (BullMQ's
 * backoff, here 8 s): the graceful close finishes, and waits for the job
 * under way. Before, the close waited for ever for its blocking connection's `end`
 * (taskforcesh/bullmq#4656), which left the process's stop hanging until SHUTDOWN_TIMEOUT_MS.
 * A throwaway redis-server of the test's own, killed and started again.
 */
const QUEUE = 'close-worker-test';
const RETRY_MS = 8000;

let redis: OwnRedis;
let queue: Queue;
let worker: Worker | undefined;

beforeEach(async () => {
  redis = await startOwnRedis();
  // One retry: a test failing while Redis is down still gets its queue closed (QUIT gives up).
  queue = new Queue(QUEUE, { connection: { ...bullConnectionOptions(redis.url), maxRetriesPerRequest: 1 } });
});

afterEach(async () => {
  await worker?.close(true);
  worker = undefined;
  await queue.close();
  await redis.stop();
});

/** A worker (kept for the teardown) and a job it runs until the test releases it; resolves once the job has started. */
async function jobUnderWay(): Promise<{ w: Worker; job: Job; release: () => void }> {
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = (): void => undefined;
  const running = new Promise<void>((resolve) => {
    started = resolve;
  });
  // Connections that wait 8 s between reconnect attempts: a stop right after the outage finds them
  // between two attempts (ioredis `reconnecting`), as BullMQ's own backoff (up to 20 s) would.
  const w = new Worker(QUEUE, async () => {
    started();
    await gate;
    return 'done';
  }, { connection: { ...bullConnectionOptions(redis.url), retryStrategy: () => RETRY_MS } });
  worker = w;
  w.on('error', () => undefined);
  await w.waitUntilReady();
  const job = await queue.add('one', {});
  await running;
  return { w, job, release };
}

/** Kills Redis, waits until both of the worker's connections have lost it, and leaves Redis down. */
async function loseRedis(w: Worker): Promise<RedisClient[]> {
  const clients = await Promise.all([w.backend.connection.client, w.backend.blockingConnection?.client]);
  const present = clients.filter((c): c is RedisClient => c !== undefined);
  expect(present).toHaveLength(2);
  const lost = Promise.all(present.map((c) => new Promise((resolve) => c.once('reconnecting', resolve))));
  await redis.pause();
  await lost;
  return present;
}

it('closes gracefully after Redis came back while the worker waits to reconnect, and waits for its job', async () => {
  const { w, job, release } = await jobUnderWay();
  const clients = await loseRedis(w);
  await redis.resume();
  // Redis answers, but the worker's connections have not tried again yet.
  expect(clients.map((c) => c.status)).toEqual(['reconnecting', 'reconnecting']);

  const closed = new Promise<void>((resolve) => w.once('closed', () => resolve()));
  const closing = closeWorker(w, true);
  release();
  await withTimeout(closing, 2 * RETRY_MS, () => new Error('closeWorker did not settle'));

  await closed;
  expect(await queue.getJobState(job.id ?? '')).toBe('completed');
}, 60_000);

it('closes at once, without waiting for the job, when the connections are not back in time', async () => {
  const { w, job, release } = await jobUnderWay();
  await loseRedis(w);

  const closed = new Promise<void>((resolve) => w.once('closed', () => resolve()));
  await withTimeout(closeWorker(w, true, 200), RETRY_MS / 2, () => new Error('closeWorker did not settle'));
  release();

  await closed;
  await redis.resume();
  // Its job was not waited for: still active (its lock runs out and another worker takes it).
  expect(await queue.getJobState(job.id ?? '')).toBe('active');
}, 60_000);
