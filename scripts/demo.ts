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
import { committedFixturesDir, fixtureIntake, fixturePatientId, fixturePatientIdentifier } from '../src/fixtures/fixture-child-intake';
import { startSandboxWorld, type SandboxWorld } from '../src/sandbox/sandbox-world';
import { startService, type RunningService } from '../src/service';
import { mintToken } from './token';
import { apiClient, waitFor } from './demo/api-client';
import { ProgressBars, type SourceProgressLine } from './demo/progress-bars';
import { runReviewAndDelivery } from './demo/review-steps';

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

interface PullView {
  state: string;
  totals: { resources: number; pages: number; attachmentsFound: number; attachmentsFetched: number; retries: number };
  sources: { endpointName: string | null; state: string; resourceTypes: { state: string; pages: number; resources: number; retries: number; attachments: { found: number; fetched: number } }[] }[];
}

function progressLines(pull: PullView): SourceProgressLine[] {
  return pull.sources.map((s) => ({
    name: s.endpointName ?? 'source',
    state: s.state,
    resources: s.resourceTypes.reduce((n, t) => n + t.resources, 0),
    pages: s.resourceTypes.reduce((n, t) => n + t.pages, 0),
    queriesDone: s.resourceTypes.filter((t) => t.state === 'complete' || t.state === 'failed').length,
    queries: s.resourceTypes.length,
    attachmentsFetched: s.resourceTypes.reduce((n, t) => n + t.attachments.fetched, 0),
    attachmentsFound: s.resourceTypes.reduce((n, t) => n + t.attachments.found, 0),
    retries: s.resourceTypes.reduce((n, t) => n + t.retries, 0),
  }));
}

interface Completeness {
  totals: { pulled: number; inBundle: number; merged: number; leftOut: number; balanced: boolean };
  sources: { name: string; resourceTypes: { pulled: number; inBundle: number; merged: unknown[]; leftOut: unknown[] }[] }[];
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
    const api = apiClient(service.url ?? '');
    const mint = (role: 'admin' | 'case_manager' | 'specialist', sub: string): Promise<string> =>
      mintToken(config.auth.jwtSecret ?? '', { roles: [role], sub, expires: '1h' }, config.auth);
    const tokens = { admin: await mint('admin', 'demo-admin'), caseManager: await mint('case_manager', 'demo-case-manager'), specialist: await mint('specialist', 'demo-specialist') };
    say(`2. Service: ${service.url} (API + workers)`);

    const endpointIds: Record<string, string> = {};
    for (const server of [world.careTeamA, world.careTeamB, world.referringEhr]) {
      const created = await api.json<{ id: string; capabilities: { everything?: boolean } | null }>('POST', '/api/endpoints', tokens.admin, {
        name: server.name,
        baseUrl: server.baseUrl,
        auth: { type: 'smart-backend', clientId: world.client.clientId, privateKeyJwk: world.client.privateJwk },
        allowInsecureHttp: true,
      });
      endpointIds[server.name] = created.id;
    }
    say(`3. Registered 3 endpoints (capabilities read from each /metadata; keys sealed at rest).`);

    const opened = await api.json<{ id: string; status: string; eligibility: { eligible: boolean }; quote: { total: number } }>('POST', '/api/cases', tokens.caseManager, fixtureIntake());
    const caseId = opened.id;
    say(`4. Opened case ${caseId} for the fixture child: eligible=${opened.eligibility.eligible}, quote $${opened.quote.total}.`);

    const identifierB = fixturePatientIdentifier('care-team-b');
    await api.json('POST', `/api/cases/${caseId}/sources`, tokens.caseManager, { endpointId: endpointIds['care-team-a'], patient: { id: fixturePatientId('care-team-a') } });
    await api.json('POST', `/api/cases/${caseId}/sources`, tokens.caseManager, {
      endpointId: endpointIds['care-team-b'],
      patient: identifierB ? { identifier: identifierB } : { match: true },
    });
    say('5. Added both care teams as sources (team A by patient id, team B by MRN). Pulling:');

    const { pullId } = await api.json<{ pullId: string }>('POST', `/api/cases/${caseId}/pulls`, tokens.caseManager, {});
    const bars = new ProgressBars();
    const pull = await waitFor(
      'the record pull',
      async () => {
        const view = await api.json<PullView>('GET', `/api/cases/${caseId}/pulls/${pullId}`, tokens.caseManager);
        bars.update(progressLines(view));
        return view;
      },
      (view) => ['complete', 'partial', 'failed'].includes(view.state),
    );
    say(`   pull ${pull.state}: ${pull.totals.resources} resources in ${pull.totals.pages} pages, ${pull.totals.attachmentsFetched}/${pull.totals.attachmentsFound} attachments, ${pull.totals.retries} retries.`);
    if (pull.state !== 'complete') throw new Error(`the pull ended ${pull.state}`);

    await waitFor('the case bundle', () => api.tryJson('GET', `/api/cases/${caseId}/bundle`, tokens.caseManager), (r) => r.status === 200);
    const completeness = await api.json<Completeness>('GET', `/api/cases/${caseId}/completeness`, tokens.caseManager);
    say('6. Completeness (pulled = in bundle + merged + left out):');
    for (const source of completeness.sources) {
      const t = source.resourceTypes;
      say(
        `   ${source.name.padEnd(14)} pulled ${t.reduce((n, x) => n + x.pulled, 0)}, in bundle ${t.reduce((n, x) => n + x.inBundle, 0)}, ` +
          `merged ${t.reduce((n, x) => n + x.merged.length, 0)}, left out ${t.reduce((n, x) => n + x.leftOut.length, 0)}`,
      );
    }
    const totals = completeness.totals;
    say(`   all sources     pulled ${totals.pulled} = ${totals.inBundle} in bundle + ${totals.merged} merged + ${totals.leftOut} left out: ${totals.balanced ? 'balanced' : 'NOT BALANCED'}`);
    if (!totals.balanced) throw new Error('the completeness report does not balance');

    await runReviewAndDelivery({ api, world, caseId, tokens, say, endpointIds });
    say(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s. Everything stopped.`);
  } finally {
    await service?.stop().catch(() => undefined);
    await world?.stop().catch(() => undefined);
  }
}

run().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\n${err instanceof DemoSetupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
