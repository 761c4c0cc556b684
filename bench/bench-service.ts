/**
 * The real service for a benchmark: a fresh PostgreSQL database created here and dropped after,
 * its own DATA_DIR and Redis queue prefix, and tokens signed with a one-off secret.
 * Env: TEST_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
 *      TEST_REDIS_URL (default redis://127.0.0.1:6379).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeQueuePrefixKeys } from '../src/redis';
import pg from 'pg';
import { mintToken } from '../scripts/token';
import { loadConfig, type Config } from '../src/config';
import type { ApiRole } from '../src/http/auth';
import { setLogLevel } from '../src/log';
import { startService, type RunningService } from '../src/service';

export const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A throwaway database: its URL, and `drop()` (forced, so lingering connections do not block it). */
export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  const name = `sob_bench_${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export interface BenchService {
  readonly service: RunningService;
  readonly config: Config;
  readonly url: string;
  readonly database: BenchDatabase;
  token(role: ApiRole, sub: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the service (role `all`) on a fresh database; `env` adds or overrides variables. */
export async function startBenchService(label: string, env: Record<string, string> = {}): Promise<BenchService> {
  const database = await createBenchDatabase(label);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-bench-'));
  const secret = `bench-${randomBytes(24).toString('hex')}`;
  try {
    const config = loadConfig({
      ROLE: 'all',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL,
      QUEUE_PREFIX: `sobbench-${randomBytes(4).toString('hex')}`,
      DATA_DIR: dataDir,
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      ...env,
    });
    setLogLevel(config.logLevel);
    const service = await startService(config);
    return {
      service,
      config,
      url: service.url ?? '',
      database,
      token: (role, sub) => mintToken(secret, { roles: [role], sub, expires: '1h' }, config.auth),
      async stop() {
        await service.stop();
        await database.drop();
        fs.rmSync(dataDir, { recursive: true, force: true });
        await removeQueuePrefixKeys(config.redisUrl, config.queuePrefix);
      },
    };
  } catch (err) {
    await database.drop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
