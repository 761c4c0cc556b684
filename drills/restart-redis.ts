/**
 * Drill: restart Redis in the middle of a pull. The drill's own `redis-server` (AOF on, fsync
 * always; never the machine's shared Redis) is SIGKILLed while a worker process pages through care
 * team A, kept down a moment, and started again on the same data — or, with `lose`, on none (every
 * queued job, flow and schedule gone, as after a Redis without persistence restarts): either way the
 * pull completes with exactly the team's records, its documents fetched and its bundle assembled
 * (PostgreSQL says what is left; the reconciler puts it back in Redis).
 */
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { startDrillService, type DrillService } from './support/drill-service';
import { pullThroughDisruption } from './support/disrupted-pull';
import { startOwnRedis, type OwnRedis } from './support/redis-server';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface RestartRedisOptions {
  /** How long Redis stays down. */
  readonly downMs: number;
  /** Redis comes back empty (its data directory wiped while it was down). */
  readonly lose?: boolean;
  readonly print?: DrillPrinter;
}

/** Runs the Redis restart drill on the drill's own redis-server. */
export async function restartRedisDrill(options: RestartRedisOptions): Promise<DrillResult> {
  const log = new DrillLog(options.lose ? 'restart Redis, data lost' : 'restart Redis', options.print);
  return runDrill(log, async () => {
    let redis: OwnRedis | undefined;
    let svc: DrillService | undefined;
    try {
      redis = await startOwnRedis();
      log.step(`own redis-server --appendonly yes on port ${redis.port}`);
      svc = await startDrillService({ redisUrl: redis.url, env: { ROLE: 'api' } });
      const own = redis;
      await pullThroughDisruption(svc, log, {
        atPages: 10,
        latencyMs: 25,
        disrupt: async () => {
          await own.restart(options.downMs, { lose: options.lose === true });
          log.step(`redis SIGKILLed, down ${options.downMs} ms, restarted ${options.lose ? 'EMPTY (data directory wiped)' : 'from its AOF'}`);
        },
      });
    } finally {
      await svc?.stop();
      await redis?.stop();
    }
  });
}
