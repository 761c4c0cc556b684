/**
 * Drill: SIGKILL a worker at seeded random points of a pull, restart it each time.
 *
 * An undisturbed pull of the fixture child's care team A (one worker process, never killed) is
 * the reference. Then the same records are pulled for a second case while the worker is killed
 * with SIGKILL at `killPoints` seeded points, chosen by committed page count (`pull_tasks.pages`
 * in PostgreSQL) and restarted each time. The final raw store (endpoint, type, id, version,
 * sha256) and the case bundle (case-specific ids replaced, identifier and timestamps dropped)
 * must equal the reference: nothing lost, nothing stored twice, counters equal rows.
 */
import { startSandboxServer, type SandboxServer } from '../src/sandbox';
import { mulberry32 } from '../src/util/mulberry32';
import { comparableBundle, firstDifference } from './support/bundle-snapshot';
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { startDrillService, type DrillService } from './support/drill-service';
import { fixtureBundle, fixturePatientId } from './support/fixtures';
import { eventually } from './support/poll';
import { assembledVersion, committedPages, openCase, pullState, pullToEnd, registerSandbox, startPull, FINISHED_STATES } from './support/pull-harness';
import { pullJobRestarts } from './support/job-restarts';
import { keyDiff, rawStoreIntegrity, rawStoreKeys } from './support/raw-store';
import { killHard, spawnWorker, type WorkerProcess } from './support/worker-process';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface KillWorkerOptions {
  readonly killPoints: number;
  readonly seed: number;
  /** Page size the sandbox serves (smaller: more pages, more places to be killed). */
  readonly pageSize?: number;
  /** Latency per sandbox request, so kills land mid-request too. */
  readonly latencyMs?: number;
  readonly print?: DrillPrinter;
}

/** Short locks and leases so a killed worker's jobs and endpoint slots are picked up again fast. */
const WORKER_ENV = { JOB_LOCK_MS: '1500', PULL_JOB_BACKOFF_MS: '50', PULL_CONCURRENCY: '4', CONCURRENCY_LEASE_MS: '1500' };

/** `count` distinct page counts in [1, total - 1], sorted, from a seeded PRNG. */
export function killPointsFor(total: number, count: number, seed: number): number[] {
  if (total - 1 < count) throw new Error(`a pull of ${total} pages has fewer than ${count} places to be killed`);
  const random = mulberry32(seed);
  const points = new Set<number>();
  while (points.size < count) points.add(1 + Math.floor(random() * (total - 1)));
  return [...points].sort((a, b) => a - b);
}

/** Runs the kill -9 drill: a reference pull, then the same pull with `killPoints` SIGKILLed workers. */
export async function killWorkerDrill(options: KillWorkerOptions): Promise<DrillResult> {
  const log = new DrillLog('kill -9 worker', options.print);
  const workers: WorkerProcess[] = [];
  let svc: DrillService | undefined;
  let server: SandboxServer | undefined;
  const spawn = (): WorkerProcess => {
    if (!svc) throw new Error('no service');
    const worker = spawnWorker(svc.config, WORKER_ENV);
    workers.push(worker);
    return worker;
  };
  return runDrill(log, async () => {
    try {
      svc = await startDrillService({ env: { ROLE: 'api' } });
      const pageSize = options.pageSize ?? 5;
      server = await startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: pageSize, maxCount: pageSize, latencyMs: options.latencyMs ?? 10 });
      await server.load(fixtureBundle('care-team-a'));
      const endpointId = await registerSandbox(svc, server);
      const source = { endpointId, patientId: fixturePatientId('care-team-a') };

      // The reference: one worker, never disturbed.
      const refCase = await openCase(svc, [source]);
      const refPull = await startPull(svc, refCase);
      const refWorker = spawn();
      const ref = await pullToEnd(svc, refCase, refPull);
      const refVersion = await assembledVersion(svc, refCase, refPull);
      await killHard(refWorker);
      const refKeys = await rawStoreKeys(svc.service.db, refCase);
      const refBundle = await comparableBundle(svc.service.db, refCase, refVersion);
      log.step(`reference pull: ${ref.state}, ${ref.totals.pages} pages, ${refKeys.length} raw resources, bundle v${refVersion}`);
      log.equal('reference pull state', ref.state, 'complete');

      const points = killPointsFor(ref.totals.pages, options.killPoints, options.seed);
      log.step(`kill points (committed pages, seed ${options.seed}): ${points.join(', ')}`);
      const caseId = await openCase(svc, [source]);
      const pullId = await startPull(svc, caseId);
      let kills = 0;
      let lastKillAt = 0;
      const killedAt: number[] = [];
      for (const point of points) {
        const worker = spawn();
        // Each restarted worker must commit at least one page of its own before it is killed.
        const target = Math.max(point, lastKillAt + 1);
        const reached = await eventually(
          `pages ≥ ${target}`,
          async () => ({ pages: await committedPages(svc as DrillService, pullId), state: await pullState(svc as DrillService, pullId), crashed: worker.exited() }),
          (s) => s.pages >= target || FINISHED_STATES.includes(s.state) || s.crashed,
          60_000,
          10,
        );
        if (reached.crashed) throw new Error(`worker exited on its own: ${worker.stderrTail()}`);
        if (FINISHED_STATES.includes(reached.state)) throw new Error(`the pull finished (${reached.state}) before kill point ${point}`);
        await killHard(worker);
        kills += 1;
        lastKillAt = await committedPages(svc, pullId);
        killedAt.push(lastKillAt);
        if (options.killPoints <= 5 || kills % 5 === 0) log.step(`kill ${kills}: SIGKILL at ${lastKillAt} committed pages`);
      }
      log.step(`killed ${kills} workers, at committed pages ${killedAt.join(', ')}`);
      const last = spawn();
      const pull = await pullToEnd(svc, caseId, pullId, 180_000);
      const version = await assembledVersion(svc, caseId, pullId);
      if (last.exited()) log.step(`last worker exited: ${last.stderrTail()}`);
      const keys = await rawStoreKeys(svc.service.db, caseId);
      const diff = keyDiff(refKeys, keys);
      const integrity = await rawStoreIntegrity(svc.service.db, caseId);
      const bundleDiff = firstDifference(refBundle, await comparableBundle(svc.service.db, caseId, version));

      const restarts = await pullJobRestarts(svc.config);
      log.step(`pull-source jobs picked up again after a kill: ${restarts}`);
      log.equal('workers killed', kills, options.killPoints);
      log.equal('pull state', pull.state, 'complete');
      log.equal('raw resources', keys.length, refKeys.length);
      log.equal('lost (in reference, not stored)', diff.missing.length, 0);
      log.equal('extra (stored, not in reference)', diff.extra.length, 0);
      log.equal('duplicated raw rows', diff.duplicated.length, 0);
      log.equal('pages committed', pull.totals.pages, ref.totals.pages);
      log.equal('pages stored', integrity.pages, ref.totals.pages);
      log.equal('duplicate pages', integrity.duplicatePages, 0);
      log.holds('task counters = stored rows', integrity.counterMismatches === 0, integrity.counterMismatchDetails.join('; '));
      log.equal('resource rows ≠ their page', integrity.resourceMismatches, 0);
      log.holds('bundle equals the reference (ids of the case, identifier, timestamps aside)', bundleDiff === undefined, bundleDiff);
      log.summarize(`${kills} kills, ${restarts} job restarts; ${keys.length} resources, ${integrity.pages} pages; 0 lost/dup: ${diff.missing.length + diff.duplicated.length === 0 ? 'yes' : 'NO'}; bundle equal: ${bundleDiff === undefined ? 'yes' : 'NO'}`);
    } finally {
      await Promise.all(workers.map(killHard));
      await server?.stop();
      await svc?.stop();
    }
  });
}
