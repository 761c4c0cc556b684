/**
 * Drill: restart PostgreSQL in the middle of a pull. The drill's own throwaway cluster (initdb in
 * a temp dir, trust auth, a free port; never the machine's shared server) gets
 * `pg_ctl restart -m fast` while a worker process pages through care team A: every connection is
 * cut, jobs retry, and the pull completes with exactly the team's records.
 */
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { startDrillService, type DrillService } from './support/drill-service';
import { pullThroughDisruption } from './support/disrupted-pull';
import { startOwnPostgres, type OwnPostgres } from './support/postgres-cluster';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface RestartPostgresOptions {
  readonly print?: DrillPrinter;
}

/** Runs the PostgreSQL restart drill on the drill's own throwaway cluster. */
export async function restartPostgresDrill(options: RestartPostgresOptions = {}): Promise<DrillResult> {
  const log = new DrillLog('restart PostgreSQL', options.print);
  return runDrill(log, async () => {
    let cluster: OwnPostgres | undefined;
    let svc: DrillService | undefined;
    try {
      cluster = await startOwnPostgres();
      log.step(`own PostgreSQL cluster at ${cluster.adminUrl}`);
      svc = await startDrillService({ postgresAdminUrl: cluster.adminUrl, env: { ROLE: 'api' } });
      const own = cluster;
      await pullThroughDisruption(svc, log, {
        atPages: 10,
        latencyMs: 25,
        // Job retries (1 s, 2 s, 4 s apart) must outlast the restart, as the 5 s default does in production.
        workerEnv: { PULL_JOB_BACKOFF_MS: '1000' },
        disrupt: async () => {
          const started = Date.now();
          await own.restart();
          log.step(`pg_ctl restart -m fast took ${Date.now() - started} ms`);
        },
      });
    } finally {
      await svc?.stop().catch(() => undefined);
      await cluster?.stop();
    }
  });
}
