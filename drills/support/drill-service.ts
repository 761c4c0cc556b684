import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../../scripts/token';
import { loadConfig, type Config } from '../../src/config';
import type { ApiRole } from '../../src/http/auth';
import { setLogLevel } from '../../src/log';
import { startService, type RunningService, type ServiceOverrides } from '../../src/service';
import { removeQueuePrefixKeys } from '../../src/redis';
import { createDrillDatabase, SHARED_POSTGRES_URL, SHARED_REDIS_URL } from './databases';

/** HS256 secret of the drills' API tokens (development only). */
export const DRILL_JWT_SECRET = 'drill-secret-that-is-long-enough-for-hs256-0123456789';

/** The real service started for a drill, with JSON request helpers. */
export interface DrillService {
  readonly service: RunningService;
  readonly url: string;
  readonly config: Config;
  /** A valid token with these roles. */
  token(roles: ApiRole | ApiRole[]): Promise<string>;
  /** fetch against the API; an object body is sent as JSON, a string as is. */
  request(method: string, route: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /** Stops the service, drops its database and data dir. */
  stop(): Promise<void>;
}

export interface DrillServiceOptions {
  /** Admin URL of the PostgreSQL server to create the drill's database on. */
  readonly postgresAdminUrl?: string;
  readonly redisUrl?: string;
  /** More environment (ROLE, JOB_LOCK_MS…); ROLE defaults to `all`. */
  readonly env?: Record<string, string>;
  readonly overrides?: ServiceOverrides;
}

/**
 * Starts the service (API, and workers unless `ROLE=api`) on a fresh database, its own Redis queue
 * prefix and data dir, on an ephemeral port.
 */
export async function startDrillService(options: DrillServiceOptions = {}): Promise<DrillService> {
  const database = await createDrillDatabase(options.postgresAdminUrl ?? SHARED_POSTGRES_URL);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-drill-'));
  const config = loadConfig({
    ROLE: 'all',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    REDIS_URL: options.redisUrl ?? SHARED_REDIS_URL,
    QUEUE_PREFIX: `sobdrill-${randomBytes(4).toString('hex')}`,
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: DRILL_JWT_SECRET,
    SECRETS_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: process.env.DRILL_LOG_LEVEL ?? 'error',
    ...options.env,
  });
  setLogLevel(config.logLevel);
  let service: RunningService;
  try {
    service = await startService(config, options.overrides);
  } catch (err) {
    await database.drop().catch(() => undefined);
    throw err;
  }
  const url = service.url ?? '';
  return {
    service,
    url,
    config,
    token: (roles) => mintToken(DRILL_JWT_SECRET, { roles: Array.isArray(roles) ? roles : [roles], sub: 'drill', expires: '30m' }, config.auth),
    request: (method, route, requestOptions = {}) =>
      fetch(`${url}${route}`, {
        method,
        headers: {
          ...(requestOptions.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(requestOptions.token ? { authorization: `Bearer ${requestOptions.token}` } : {}),
          ...requestOptions.headers,
        },
        body: requestOptions.body === undefined ? undefined : typeof requestOptions.body === 'string' ? requestOptions.body : JSON.stringify(requestOptions.body),
      }),
    async stop() {
      await service.stop();
      // A service started against a Redis that does not answer (a test of that) has no keys to remove.
      await removeQueuePrefixKeys(config.redisUrl, config.queuePrefix).catch(() => undefined);
      await database.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Client tuning for drills: quick retries and breaker cool-downs (the faults are many, the time short). */
export const FAST_CLIENT: ServiceOverrides = {
  clientOptions: { retry: { baseDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 1500 }, breaker: { cooldownMs: 500 } },
};
