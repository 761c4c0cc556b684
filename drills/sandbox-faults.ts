/**
 * Drill: every sandbox fault at a seeded rate on every route of two care teams (SMART auth on).
 * 429 with Retry-After (seconds and HTTP-date), 503, 500, hang, reset, malformed and truncated
 * pages, expired tokens: the pull completes, or ends `partial` naming each source that failed, and
 * nothing corrupt is stored (every page parses and matches its hash, every resource row is the
 * resource of its page, no page stored twice, counters equal rows, no resource the server lacks).
 */
import type { FaultAction } from '../src/sandbox';
import { startSandboxServer, type SandboxServer } from '../src/sandbox';
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { FAST_CLIENT, startDrillService, type DrillService } from './support/drill-service';
import { expectedKeys } from './support/disrupted-pull';
import { fixtureBundle, fixturePatientId, type FixtureTeam } from './support/fixtures';
import { openCase, pullToEnd, startPull } from './support/pull-harness';
import { rawStoreIntegrity } from './support/raw-store';
import { makeSmartClient } from './support/smart-client';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface SandboxFaultsOptions {
  /** Probability of each fault kind per request (the kinds add up). */
  readonly rate: number;
  readonly seed: number;
  readonly print?: DrillPrinter;
}

/** The faults a hospital EHR throws, one rule each. */
export const FAULT_ACTIONS: readonly FaultAction[] = [
  { kind: 'rate-limit', retryAfterSeconds: 1 },
  { kind: 'rate-limit', retryAfterSeconds: 1, retryAfterFormat: 'http-date' },
  { kind: 'unavailable', retryAfterSeconds: 1 },
  { kind: 'server-error', message: 'lock-error' },
  { kind: 'hang' },
  { kind: 'reset' },
  { kind: 'malformed-json' },
  { kind: 'truncated', fraction: 0.5 },
  { kind: 'expired-token' },
];

const TEAMS: readonly { team: FixtureTeam; paging: 'offset' | 'token' }[] = [
  { team: 'care-team-a', paging: 'offset' },
  { team: 'care-team-b', paging: 'token' },
];

/** Runs one pull of both care teams under every fault kind at `rate`, seeded by `seed`. */
export async function sandboxFaultsDrill(options: SandboxFaultsOptions): Promise<DrillResult> {
  const log = new DrillLog(`sandbox faults (seed ${options.seed}, ${Math.round(options.rate * 100)}%)`, options.print);
  const servers: SandboxServer[] = [];
  let svc: DrillService | undefined;
  return runDrill(log, async () => {
    try {
      svc = await startDrillService({ env: { JOB_LOCK_MS: '3000', PULL_JOB_BACKOFF_MS: '100', FHIR_REQUEST_TIMEOUT_MS: '1500' }, overrides: FAST_CLIENT });
      const smart = await makeSmartClient('sob-drill-faults');
      const admin = await svc.token('admin');
      const sources: { endpointId: string; patientId: string }[] = [];
      for (const [i, { team, paging }] of TEAMS.entries()) {
        const server = await startSandboxServer({ name: team, auth: 'smart', paging, defaultCount: 10, maxCount: 10, seed: options.seed + i });
        servers.push(server);
        server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
        await server.load(fixtureBundle(team));
        const res = await svc.request('POST', '/api/endpoints', {
          token: admin,
          body: { name: team, baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk }, allowInsecureHttp: true, maxRequestsPerSecond: 1000, maxConcurrency: 8 },
        });
        if (res.status !== 201) throw new Error(`registering ${team}: ${res.status} ${await res.text()}`);
        sources.push({ endpointId: ((await res.json()) as { id: string }).id, patientId: fixturePatientId(team) });
        FAULT_ACTIONS.forEach((action, k) => server.faults.add({ match: '* *', action, probability: options.rate, seed: options.seed * 1000 + i * 100 + k }));
      }
      log.step(`${FAULT_ACTIONS.length} fault kinds at ${(options.rate * 100).toFixed(1)}% each on every route of ${TEAMS.length} SMART servers (seed ${options.seed})`);
      const caseId = await openCase(svc, sources);
      const pullId = await startPull(svc, caseId);
      const view = await pullToEnd(svc, caseId, pullId, 240_000);
      const fired = servers.flatMap((s) => s.faults.list()).reduce((n, r) => n + r.fired, 0);
      const requests = servers.reduce((n, s) => n + s.requestCount(), 0);
      const byKind = new Map<string, number>();
      for (const rule of servers.flatMap((s) => s.faults.list())) byKind.set(rule.input.action.kind, (byKind.get(rule.input.action.kind) ?? 0) + rule.fired);
      log.step(`pull ${view.state} after ${requests} requests, ${fired} faults injected (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}), ${view.totals.retries} retries`);

      const timeline = servers.flatMap((s) => s.requests().map((r) => ({ at: r.at, what: `${s.name} ${r.method} ${r.target}` }))).sort((a, b) => a.at - b.at);
      const gap = timeline.slice(1).reduce((widest, r, i) => (r.at - (timeline[i]?.at ?? r.at) > widest.ms ? { ms: r.at - (timeline[i]?.at ?? r.at), after: timeline[i]?.what ?? '' } : widest), { ms: 0, after: '' });
      log.step(`longest quiet gap between requests: ${gap.ms} ms, after ${gap.after.slice(0, 120)}`);
      log.holds('pull complete or partial', view.state === 'complete' || view.state === 'partial', view.state);
      log.atLeast('faults injected', fired, 1);
      const failedNames = view.failedSources.map((s) => s.endpointName).sort();
      if (view.state === 'partial') {
        const failed = await svc.service.db.query<{ name: string; query_key: string; last_error: string | null }>(
          `SELECT e.name, t.query_key, t.last_error FROM pull_tasks t JOIN case_sources s ON s.id = t.source_id JOIN endpoints e ON e.id = s.endpoint_id
            WHERE t.pull_id = $1 AND t.state <> 'complete' ORDER BY 1, 2`,
          [pullId],
        );
        log.step(`failed for good: ${failed.rows.map((r) => `${r.name} ${r.query_key} (${(r.last_error ?? 'no error recorded').slice(0, 120)})`).join('; ')}`);
        log.holds('partial names the failed sources', failedNames.length > 0, JSON.stringify(failedNames));
        log.equal('failed sources = sources with a failed task', failedNames, [...new Set(failed.rows.map((r) => r.name))].sort());
      }
      else log.equal('failed sources', failedNames, []);
      let stored = 0;
      let expectedTotal = 0;
      for (const { team } of TEAMS) {
        const { rows } = await svc.service.db.query<{ k: string }>(
          `SELECT r.resource_type || '/' || r.remote_id AS k FROM raw_resources r JOIN case_sources s ON s.id = r.source_id JOIN endpoints e ON e.id = s.endpoint_id
            WHERE r.case_id = $1 AND e.name = $2 ORDER BY 1`,
          [caseId, team],
        );
        const keys = rows.map((r) => r.k);
        const expected = expectedKeys(team);
        stored += keys.length;
        expectedTotal += expected.length;
        const held = new Set(expected);
        log.equal(`${team}: stored resources the server does not hold`, keys.filter((k) => !held.has(k)).length, 0);
        if (!failedNames.includes(team)) {
          log.equal(`${team}: resources (source complete)`, keys.length, expected.length);
          const got = new Set(keys);
          const missing = expected.filter((k) => !got.has(k));
          // What went missing, with the requests that asked for its type: the next failure says where to look.
          if (missing.length > 0) {
            const server = servers[TEAMS.findIndex((t) => t.team === team)];
            const types = new Set(missing.map((k) => k.split('/')[0] ?? ''));
            const asked = (server?.requests() ?? []).filter((r) => [...types].some((t) => r.target.startsWith(`/${t}`))).map((r) => `${r.method} ${r.target.slice(0, 100)} → ${r.status ?? 'no answer'}`);
            log.step(`${team}: missing ${missing.join(', ')}; requests for ${[...types].join(', ')}: ${asked.join(' | ')}`);
          }
        }
      }
      const integrity = await rawStoreIntegrity(svc.service.db, caseId);
      log.equal('unparsable pages', integrity.unparsablePages, 0);
      log.equal('page hash mismatches', integrity.pageHashMismatches, 0);
      log.equal('resource rows ≠ their page (parse + sha256)', integrity.resourceMismatches, 0);
      log.equal('duplicate pages', integrity.duplicatePages, 0);
      log.holds('task counters = stored rows', integrity.counterMismatches === 0, integrity.counterMismatchDetails.join('; '));
      log.summarize(`${fired} faults in ${requests} requests; ${view.state}${failedNames.length ? ` (${failedNames.join(', ')})` : ''}; ${stored}/${expectedTotal} resources, ${integrity.pages} pages, 0 corrupt: ${integrity.unparsablePages + integrity.pageHashMismatches + integrity.resourceMismatches === 0 ? 'yes' : 'NO'}`);
    } finally {
      await svc?.stop();
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
}
