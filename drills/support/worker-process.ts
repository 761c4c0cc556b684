import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config';
import { DRILL_JWT_SECRET } from './drill-service';

/** The compiled service binary, from `dist/drills/support` (npm run drills) or `drills/support` (jest after tsc). */
export function serviceBinary(): string {
  const root = path.resolve(__dirname, '..', '..');
  const main = path.basename(root) === 'dist' ? path.join(root, 'src', 'main.js') : path.join(root, 'dist', 'src', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
  return main;
}

/**
 * The real service binary as a separate `ROLE=worker` process on the drill service's database,
 * Redis, queue prefix and data dir, so a drill can SIGKILL it mid-job. Its stderr is kept in
 * `stderrTail()` so a crash can be explained.
 */
export interface WorkerProcess {
  readonly child: ChildProcess;
  /** The last few KB the worker wrote to stderr. */
  stderrTail(): string;
  /** Whether the process has exited (killed or crashed). */
  exited(): boolean;
}

/** Whether a child process has exited (on its own or by a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * The compiled service binary as a child process with `env` (and this machine's `PATH`) only: nothing
 * else of the parent's environment leaks into its config.
 */
export function spawnServiceBinary(env: Record<string, string>, stdio: StdioOptions): ChildProcess {
  return spawn(process.execPath, [serviceBinary()], { env: { PATH: process.env.PATH ?? '', ...env }, stdio });
}

/** Starts a `ROLE=worker` process of the service binary for the drill service's config. */
export function spawnWorker(config: Config, env: Record<string, string> = {}): WorkerProcess {
  const child = spawnServiceBinary(
    {
      ROLE: 'worker',
      DATABASE_URL: config.databaseUrl ?? '',
      REDIS_URL: config.redisUrl,
      QUEUE_PREFIX: config.queuePrefix,
      DATA_DIR: config.dataDir,
      AUTH_JWT_SECRET: DRILL_JWT_SECRET,
      SECRETS_KEY: config.secretsKey.toString('base64'),
      LOG_LEVEL: process.env.DRILL_LOG_LEVEL ?? 'error',
      ...env,
    },
    ['ignore', 'ignore', 'pipe'],
  );
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  });
  return { child, stderrTail: () => tail, exited: () => hasExited(child) };
}

/** SIGKILL: no shutdown hook runs, exactly like a machine losing power under the process. Waits until it has exited. */
export async function killHard(target: { readonly child: ChildProcess }): Promise<void> {
  const { child } = target;
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
