import { startSandboxServer } from '../../src/sandbox';
import type { DrillLog } from './drill-log';
import type { DrillService } from './drill-service';
import { fixtureBundle, fixturePatientId, type FixtureTeam } from './fixtures';
import { eventually } from './poll';
import { assembledVersion, committedPages, openCase, pullState, pullToEnd, registerSandbox, startPull, FINISHED_STATES } from './pull-harness';
import { pullJobRestarts } from './job-restarts';
import { rawStoreIntegrity } from './raw-store';
import { killHard, spawnWorker, type WorkerProcess } from './worker-process';

/** Resource types a pull asks a care team for (what the raw store should hold of the fixture). */
export const PULLED_TYPES: ReadonlySet<string> = new Set([
  'Patient', 'Observation', 'DiagnosticReport', 'DocumentReference', 'Binary', 'ImagingStudy', 'Endpoint', 'Condition',
  'MedicationRequest', 'Medication', 'AllergyIntolerance', 'Procedure', 'Encounter', 'Immunization',
]);

/** `Type/id` of every fixture resource of a care team that a pull stores, sorted. */
export function expectedKeys(team: FixtureTeam): string[] {
  return (fixtureBundle(team).entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is NonNullable<typeof r> => r !== undefined && PULLED_TYPES.has(r.resourceType))
    .map((r) => `${r.resourceType}/${r.id}`)
    .sort();
}

export interface DisruptionOptions {
  /** What to break mid-pull (restart Redis, restart PostgreSQL…), once `atPages` pages are committed. */
  readonly disrupt: () => Promise<void>;
  readonly atPages: number;
  /** Sandbox latency per request, so the pull is still running when the disruption hits. */
  readonly latencyMs: number;
  readonly workerEnv?: Record<string, string>;
  /** How long the pull may take after the disruption. */
  readonly finishWithinMs?: number;
}

/**
 * Pulls care team A with one worker process and breaks something in the middle; then checks the
 * pull completes, the worker lived through it, the bundle is assembled, and the raw store holds
 * exactly the team's records with nothing corrupt or stored twice.
 */
export async function pullThroughDisruption(svc: DrillService, log: DrillLog, options: DisruptionOptions): Promise<void> {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: 5, maxCount: 5, latencyMs: options.latencyMs });
  let worker: WorkerProcess | undefined;
  try {
    await server.load(fixtureBundle('care-team-a'));
    const endpointId = await registerSandbox(svc, server);
    const caseId = await openCase(svc, [{ endpointId, patientId: fixturePatientId('care-team-a') }]);
    const pullId = await startPull(svc, caseId);
    worker = spawnWorker(svc.config, { JOB_LOCK_MS: '2000', PULL_JOB_BACKOFF_MS: '200', CONCURRENCY_LEASE_MS: '2000', RECONCILE_EVERY_MS: '3000', ...options.workerEnv });
    const running = worker;
    await eventually(`${options.atPages} pages committed`, () => committedPages(svc, pullId), (n) => n >= options.atPages || running.exited(), 60_000, 20);
    const before = await committedPages(svc, pullId);
    const stateBefore = await pullState(svc, pullId);
    log.step(`disrupting at ${before} committed pages (pull ${stateBefore})`);
    await options.disrupt();
    log.step('disruption over; waiting for the pull to finish');
    const view = await pullToEnd(svc, caseId, pullId, options.finishWithinMs ?? 90_000).catch(async (err: unknown) => {
      const tasks = await svc.service.db.query<Record<string, unknown>>('SELECT resource_type, state, pages, retries, last_error FROM pull_tasks WHERE pull_id = $1 ORDER BY resource_type', [pullId]);
      log.step(`pull did not finish; tasks: ${JSON.stringify(tasks.rows)}; worker ${running.exited() ? 'EXITED' : 'running'}; worker stderr: ${running.stderrTail().slice(-1500)}`);
      throw err;
    });
    const version = await assembledVersion(svc, caseId, pullId, 1, 60_000).catch(() => 0);
    const { rows } = await svc.service.db.query<{ k: string }>(`SELECT resource_type || '/' || remote_id AS k FROM raw_resources WHERE case_id = $1 ORDER BY 1`, [caseId]);
    const stored = rows.map((r) => r.k);
    const expected = expectedKeys('care-team-a');
    const integrity = await rawStoreIntegrity(svc.service.db, caseId);
    const attachments = await svc.service.db.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM attachments WHERE case_id = $1 GROUP BY state ORDER BY state',
      [caseId],
    );
    const attachmentsBy = new Map(attachments.rows.map((r) => [r.state, r.n]));
    const restarts = await pullJobRestarts(svc.config);
    log.step(`pull-source jobs started again (retried or recovered from a stall): ${restarts}`);
    log.holds('disruption hit a running pull', !FINISHED_STATES.includes(stateBefore), stateBefore);
    log.atLeast('pages committed after the disruption', view.totals.pages - before, 1);
    log.holds('worker process still running', !running.exited(), running.stderrTail().slice(-300));
    log.equal('pull state', view.state, 'complete');
    log.holds('bundle assembled', version > 0, `version ${version}`);
    log.equal('raw resources', stored.length, expected.length);
    log.equal('lost', expected.filter((k) => !stored.includes(k)).length, 0);
    log.equal('duplicated', stored.length - new Set(stored).size, 0);
    log.equal('corrupt (unparsable, hash or row mismatch)', integrity.unparsablePages + integrity.pageHashMismatches + integrity.resourceMismatches, 0);
    log.equal('duplicate pages', integrity.duplicatePages, 0);
    log.atLeast('documents fetched', attachmentsBy.get('fetched') ?? 0, 1);
    log.equal('documents still pending or failed', (attachmentsBy.get('pending') ?? 0) + (attachmentsBy.get('failed') ?? 0), 0);
    log.holds('task counters = stored rows', integrity.counterMismatches === 0, integrity.counterMismatchDetails.join('; '));
    log.summarize(`disrupted at ${before}/${integrity.pages} pages; ${view.state}; ${stored.length}/${expected.length} resources; job restarts ${restarts}; 0 lost/dup/corrupt: ${integrity.unparsablePages + integrity.pageHashMismatches + integrity.resourceMismatches + integrity.duplicatePages + integrity.counterMismatches === 0 && stored.length === expected.length ? 'yes' : 'NO'}`);
  } finally {
    if (worker) await killHard(worker);
    await server.stop();
  }
}
