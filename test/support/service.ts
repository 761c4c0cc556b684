import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import type { ApiRole } from '../../src/http/auth';
import { removeQueuePrefixKeys } from '../../src/redis';
import { startService, type RunningService, type ServiceOverrides } from '../../src/service';
import { mintToken } from '../../scripts/token';
import { createTestDatabase, type TestDatabase } from './postgres';
import { TEST_REDIS_URL } from './redis-url';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

export interface TestService {
  readonly service: RunningService;
  readonly url: string;
  readonly config: Config;
  /** A valid HS256 token for the given roles. */
  token(roles: ApiRole[] | ApiRole, sub?: string): Promise<string>;
  /** fetch against the service with JSON helpers. */
  request(method: string, route: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * The real service (API + workers) on a fresh PostgreSQL database, real Redis (own queue prefix)
 * and an ephemeral port.
 */
export async function startTestService(env: Record<string, string> = {}, overrides: ServiceOverrides = {}): Promise<TestService> {
  const testDb: TestDatabase = await createTestDatabase();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-test-'));
  const config = loadConfig({
    ROLE: 'all',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: testDb.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: `sobtest-${randomBytes(4).toString('hex')}`,
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    // One assembly thread per test file: under Jest it starts from TypeScript, ~2 s each time.
    ASSEMBLY_THREAD_IDLE_MS: '60000',
    ...env,
  });
  const service = await startService(config, overrides);
  const url = service.url ?? '';
  return {
    service,
    url,
    config,
    token: (roles, sub = 'test-user') =>
      mintToken(TEST_JWT_SECRET, { roles: Array.isArray(roles) ? roles : [roles], sub, expires: '10m' }, config.auth),
    request: (method, route, options = {}) =>
      fetch(`${url}${route}`, {
        method,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
        body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
      }),
    async stop() {
      await service.stop();
      // A service started against a Redis that does not answer (a test of that) has no keys to remove.
      await removeQueuePrefixKeys(config.redisUrl, config.queuePrefix).catch(() => undefined);
      await testDb.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Client tuning for tests: quick retries and breaker cool-downs, so fault tests finish fast. */
export const FAST_CLIENT: ServiceOverrides = {
  clientOptions: { retry: { baseDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 1500 }, breaker: { cooldownMs: 500 } },
};

/** Polls `read` until `done` holds (the pull pipeline has no push channel to await); fails after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits until the case has a bundle (GET answers 200). Only the status is read: the streamed body is
 * let go, not left open (an open body would hold the service's stop).
 */
export async function bundleAssembled(svc: TestService, caseId: string, token: string, timeoutMs = 90_000): Promise<void> {
  await eventually(
    async () => {
      const res = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token });
      await res.body?.cancel();
      return res.status;
    },
    (status) => status === 200,
    timeoutMs,
  );
}

/** Waits (10 s at most) until the BullMQ job `jobId` of `queue` is in state `wanted`; returns the state. */
export function jobState(queue: { getJobState(jobId: string): Promise<string> }, jobId: string, wanted: string): Promise<string> {
  return eventually(() => queue.getJobState(jobId), (s) => s === wanted, 10_000);
}
