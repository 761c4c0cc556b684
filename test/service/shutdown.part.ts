import { randomBytes } from 'node:crypto';
import { startOwnRedis, type OwnRedis } from '../../drills/support/redis-server';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { eventually } from '../support/service';
import { spawnService, type ServiceProcess } from '../support/service-process';
import { tempDir } from '../support/temp-dir';

/**
 * A stop (SIGTERM) ends, whatever Redis does: the real binary as a child process, on its own
 * redis-server that the test kills or freezes. A normal stop exits 0 with a `stopped` line; with Redis
 * gone the workers are closed without waiting and the process still exits in time; a stop that cannot
 * finish (Redis hung, its QUIT never answered) ends at SHUTDOWN_TIMEOUT_MS, exit 1, naming the steps
 * still pending. Each process also serves /healthz and /readyz on its METRICS_PORT.
 */
let testDb: TestDatabase;
let dataDir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  dataDir = tempDir('shutdown');
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await testDb.drop();
});

async function start(role: 'worker' | 'all', env: Record<string, string> = {}): Promise<{ redis: OwnRedis; svc: ServiceProcess }> {
  const redis = await startOwnRedis();
  cleanups.push(() => redis.stop());
  const svc = spawnService({
    ROLE: role,
    DATABASE_URL: testDb.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `sobtest-${randomBytes(4).toString('hex')}`,
    DATA_DIR: dataDir,
    METRICS_PORT: '0',
    ...env,
  });
  cleanups.push(() => svc.kill());
  await svc.waitFor('service started');
  return { redis, svc };
}

async function metricsBase(svc: ServiceProcess): Promise<string> {
  const line = await svc.waitFor('worker metrics listening');
  expect(line.url).toBeUndefined();
  expect(typeof line.port).toBe('number');
  return `http://127.0.0.1:${String(line.port)}`;
}

async function apiBase(svc: ServiceProcess): Promise<string> {
  return `http://127.0.0.1:${String((await svc.waitFor('api listening')).port)}`;
}

/** Waits until `base`/readyz reports Redis `ok` (the process's connection is made after it starts). */
async function redisConnected(base: string): Promise<void> {
  await eventually(async () => ((await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, string> }).checks.redis, (state) => state === 'ok', 10_000);
}

it('a normal stop exits 0, logging the active jobs at its start and a final stopped line', async () => {
  const { svc } = await start('worker');
  const base = await metricsBase(svc);
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  await redisConnected(base);
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', schema: 'ok', redis: 'ok' } });

  svc.child.kill('SIGTERM');
  const { code } = await svc.exited;
  expect(code).toBe(0);
  const shuttingDown = svc.lines.find((l) => l.message === 'shutting down');
  expect(shuttingDown).toMatchObject({ signal: 'SIGTERM', timeoutMs: 90_000 });
  // The sweeps scheduled at start may be running.
  expect(shuttingDown?.activeJobs).toEqual(expect.any(Number));
  const stopped = svc.lines.find((l) => l.message === 'stopped');
  expect(stopped).toMatchObject({ level: 'info' });
  expect(typeof stopped?.durationMs).toBe('number');
  expect(svc.lines.some((l) => l.message === 'shutdown timed out')).toBe(false);
}, 60_000);

it('ROLE=worker: with Redis stopped, /readyz names redis and SIGTERM still ends well within the deadline', async () => {
  const timeoutMs = 20_000;
  const { redis, svc } = await start('worker', { SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
  const base = await metricsBase(svc);
  await redisConnected(base);
  await redis.stop();
  const lost = await svc.waitFor('redis connection lost');
  expect(lost).toMatchObject({ level: 'warn', event: 'redis.down', connection: 'worker' });
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(503);
  expect(await ready.json()).toEqual({ status: 'unavailable', detail: 'Not answering: redis', checks: { database: 'ok', schema: 'ok', redis: 'unavailable' } });
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  // Once per transition, not once per retry.
  expect(svc.lines.filter((l) => l.event === 'redis.down')).toHaveLength(1);

  const signalled = Date.now();
  svc.child.kill('SIGTERM');
  const { code, at } = await svc.exited;
  expect(at - signalled).toBeLessThan(timeoutMs);
  expect(code).toBe(0);
  // The stop says once that it did not wait for the jobs.
  expect(svc.lines.filter((l) => l.message === 'redis not ready at shutdown: workers closed without waiting for their jobs')).toEqual([
    expect.objectContaining({ level: 'warn', activeJobs: expect.any(Number) }),
  ]);
  expect(svc.lines.some((l) => l.message === 'stopped')).toBe(true);
  // No schedule warning: while Redis is down the schedule checks wait for it (they never fail), and
  // those the stop cuts short are no fault. (One warning per queue and outage when a write does fail:
  // test/queues/keep-scheduled.part.ts.)
  expect(svc.lines.filter((l) => String(l.message).startsWith('job schedule') && l.level !== 'debug')).toEqual([]);
}, 60_000);

it('ROLE=all: with Redis stopped, the API stays ready (redis degraded) and SIGTERM ends within the deadline', async () => {
  const timeoutMs = 20_000;
  const { redis, svc } = await start('all', { SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
  const api = await apiBase(svc);
  await redisConnected(api);
  await redis.stop();
  await svc.waitFor('redis connection lost');
  const ready = await fetch(`${api}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', schema: 'ok', redis: 'unavailable' }, degraded: ['redis'] });

  const signalled = Date.now();
  svc.child.kill('SIGTERM');
  const { code, at } = await svc.exited;
  expect(at - signalled).toBeLessThan(timeoutMs);
  expect(code).toBe(0);
  expect(svc.lines.some((l) => l.message === 'stopped')).toBe(true);
}, 60_000);

it('a stop that cannot finish (Redis hung) ends at SHUTDOWN_TIMEOUT_MS, exit 1, naming the pending steps', async () => {
  const timeoutMs = 2000;
  const { redis, svc } = await start('worker', { SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
  await redisConnected(await metricsBase(svc));
  // Connections stay open and every command waits: a close that asks Redis anything waits for ever.
  redis.freeze();
  cleanups.push(async () => redis.thaw());
  const signalled = Date.now();
  svc.child.kill('SIGTERM');
  const { code, at } = await svc.exited;
  expect({ code, lines: svc.lines.slice(-8) }).toMatchObject({ code: 1 });
  expect(at - signalled).toBeGreaterThanOrEqual(timeoutMs - 100);
  expect(at - signalled).toBeLessThan(timeoutMs + 10_000);
  const timedOut = svc.lines.find((l) => l.message === 'shutdown timed out');
  expect(timedOut).toMatchObject({ level: 'error', timeoutMs });
  // Every worker's graceful close waits on the hung Redis (its steps named within `workers/`, not the
  // `workers` step itself); the steps after them have not begun.
  const pending = timedOut?.pending;
  expect(Array.isArray(pending)).toBe(true);
  expect([...(pending as string[])].sort()).toEqual(
    ['sla-sweep', 'pull-source', 'fetch-attachment', 'assemble-case', 'ingest-upload', 'pull-reconcile', 'deliver-report', 'notify', 'send-webhook'].map((queue) => `workers/worker:${queue}`).sort(),
  );
  expect(svc.lines.some((l) => l.message === 'stopped')).toBe(false);
}, 60_000);
