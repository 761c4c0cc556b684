import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { Config } from '../../src/config';
import { TEST_JWT_SECRET } from './service';

const MAIN = path.resolve(__dirname, '../../dist/src/main.js');

/**
 * The real service binary (compiled by `npm test`'s tsc step) as a separate worker process, sharing
 * the test service's database, Redis prefix and data dir, so a test can SIGKILL it mid-job.
 */
export function spawnWorker(config: Config, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      ROLE: 'worker',
      DATABASE_URL: config.databaseUrl ?? '',
      REDIS_URL: config.redisUrl,
      QUEUE_PREFIX: config.queuePrefix,
      DATA_DIR: config.dataDir,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: config.secretsKey.toString('base64'),
      LOG_LEVEL: 'error',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
