/**
 * The whole journey in one command (`npm run demo`): the service (all roles; embedded PGlite
 * under DATA_DIR unless DATABASE_URL is set; Redis at REDIS_URL) and the sandbox world (two care
 * teams and the referring EHR, SMART Backend Services on) start in this process; the demo then
 * drives the public API as a case manager, a specialist and an admin would, prints what happened
 * and where to look, stops everything and exits 0.
 *
 * Env: DATA_DIR (default ./data/demo, emptied at start when PGlite is used, so runs never see
 * each other), DATABASE_URL, REDIS_URL (default redis://127.0.0.1:6379), DEMO_LATENCY_MS.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import IORedis from 'ioredis';
import { loadConfig, type Config } from '../src/config';
import { setLogLevel } from '../src/log';
import { removeQueuePrefixKeys } from '../src/redis';
import { committedFixturesDir } from '../src/fixtures/fixture-child-intake';
import { startSandboxWorld, type SandboxWorld } from '../src/sandbox/sandbox-world';
import { startService, type RunningService } from '../src/service';
import { mintToken } from './token';
import { apiClient } from './demo/api-client';
import { registerWorldEndpoints, runJourney } from './demo/journey';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Redis must answer before anything starts: the workers' queues live there. */
async function requireRedis(url: string): Promise<void> {
  const redis = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    throw new DemoSetupError(
      `Redis does not answer at ${url}.\n` +
        'Start one and run the demo again, for example:\n' +
        '    redis-server --daemonize yes\n' +
        '(or: sudo service redis-server start; or set REDIS_URL to a running Redis)',
    );
  } finally {
    redis.disconnect();
  }
}

class DemoSetupError extends Error {
  override readonly name = 'DemoSetupError';
}

function demoConfig(): Config {
  const dataDir = path.resolve(process.env.DATA_DIR ?? './data/demo');
  if (!process.env.DATABASE_URL) fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  return loadConfig({
    ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    ROLE: 'all',
    PORT: process.env.PORT ?? '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    REDIS_URL,
    QUEUE_PREFIX: `demo-${randomBytes(3).toString('hex')}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
  });
}

async function run(): Promise<void> {
  const started = Date.now();
  await requireRedis(REDIS_URL);
  const config = demoConfig();
  setLogLevel(config.logLevel);
  say(`Second Opinion Bridge demo — store: ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite under ${config.dataDir} (no fsync: for trying the service only)`}, Redis ${REDIS_URL}`);
  let world: SandboxWorld | undefined;
  let service: RunningService | undefined;
  try {
    world = await startSandboxWorld({
      auth: 'smart',
      fixturesDir: committedFixturesDir(),
      stateDir: path.join(config.dataDir, '.sandbox'),
      latencyMs: Number(process.env.DEMO_LATENCY_MS ?? 0),
    });
    say(`1. Sandbox FHIR servers: care-team-a ${world.careTeamA.baseUrl}, care-team-b ${world.careTeamB.baseUrl}, referring-ehr ${world.referringEhr.baseUrl} (SMART Backend Services, client ${world.client.clientId})`);
    service = await startService(config);
    const mint = (role: 'admin' | 'case_manager' | 'specialist', sub: string): Promise<string> =>
      mintToken(config.auth.jwtSecret ?? '', { roles: [role], sub, expires: '1h' }, config.auth);
    const tokens = { admin: await mint('admin', 'demo-admin'), caseManager: await mint('case_manager', 'demo-case-manager'), specialist: await mint('specialist', 'demo-specialist') };
    say(`2. Service: ${service.url} (API + workers)`);
    const ctx = { api: apiClient(service.url ?? ''), world, tokens, specialistSub: 'demo-specialist', say, progress: true, outDir: path.join(config.dataDir, 'out') };
    const result = await runJourney(ctx, await registerWorldEndpoints(ctx));
    say(`Intake to delivered report: ${(result.intakeToDeliveredMs / 1000).toFixed(1)} s.`);
  } finally {
    await service?.stop().catch(() => undefined);
    await world?.stop().catch(() => undefined);
    // Each run takes a new queue prefix: its queues and client keys are of no use to the next one.
    await removeQueuePrefixKeys(REDIS_URL, config.queuePrefix).catch(() => undefined);
  }
  say(`Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s; the service and the sandbox are stopped.`);
}

run().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\n${err instanceof DemoSetupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
