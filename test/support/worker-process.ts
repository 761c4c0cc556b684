/**
 * The real service binary (compiled by `npm test`'s tsc step) as a separate worker process on the
 * test service's database, Redis prefix and data dir, so a test can SIGKILL it mid-job. The
 * drills' spawner, signed with the tests' JWT secret.
 */
import type { Config } from '../../src/config';
import { killHard, spawnWorker as spawnDrillWorker, type WorkerProcess } from '../../drills/support/worker-process';
import { TEST_JWT_SECRET } from './service';

export { killHard, type WorkerProcess };

export function spawnWorker(config: Config, env: Record<string, string> = {}): WorkerProcess {
  return spawnDrillWorker(config, { AUTH_JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'error', ...env });
}
