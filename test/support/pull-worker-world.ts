/**
 * What a test that runs pull tasks or attachment jobs directly needs: its own PostgreSQL database, a
 * sandbox EHR over HTTP, a Redis connection, and the pull workers' dependencies (client state under a
 * key prefix of its own, blobs in a temporary folder).
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { startSandboxServer, type SandboxServer, type SandboxServerOptions } from '../../src/sandbox';
import { createTestDatabase, type TestDatabase } from './postgres';
import { pullWorkerDepsForTest } from './pull-task';
import { TEST_REDIS_URL } from './redis-url';
import { tempDir } from './temp-dir';

export interface PullWorkerWorld {
  readonly t: TestDatabase;
  readonly ehr: SandboxServer;
  readonly redis: IORedis;
  /** The Redis key prefix of the FHIR clients' state (limiter, breaker, tokens). */
  readonly fhirKeyPrefix: string;
  readonly deps: PullWorkerDeps;
  /** Closes the clients and Redis, stops the EHR and drops the database. */
  stop(): Promise<void>;
}

/**
 * Starts a {@link PullWorkerWorld}: the sandbox EHR with `ehr` (auth `none` unless given), attachments
 * up to `maxAttachmentBytes`. Use it with `startForFile`.
 */
export async function startPullWorkerWorld(options: { readonly ehr?: Partial<SandboxServerOptions>; readonly maxAttachmentBytes: number }): Promise<PullWorkerWorld> {
  const t = await createTestDatabase();
  const ehr = await startSandboxServer({ name: 'ehr', auth: 'none', ...options.ehr });
  const redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const fhirKeyPrefix = `sobtest-${randomBytes(4).toString('hex')}:fhir:`;
  const deps = pullWorkerDepsForTest(t.db, redis, fhirKeyPrefix, tempDir('pull-worker'), options.maxAttachmentBytes);
  return {
    t, ehr, redis, fhirKeyPrefix, deps,
    async stop() {
      await deps.clients.closeAll();
      redis.disconnect();
      await ehr.stop();
      await t.drop();
    },
  };
}
