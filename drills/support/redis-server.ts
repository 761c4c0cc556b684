import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import { freePort } from './free-port';
import { eventually } from './poll';
import { hasExited } from './worker-process';

/**
 * A Redis of the drill's own (never the machine's shared one): `redis-server` on a free port with
 * AOF on (`appendfsync always`, so a kill loses nothing acknowledged), data in a temp dir.
 */
export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  /**
   * SIGKILLs the server (no save on exit) and starts it again on the same port: on the same data, or
   * with `lose` on an empty data directory (what a Redis without persistence, or a failover to an
   * empty replica, comes back with).
   */
  restart(downMs?: number, options?: { readonly lose?: boolean }): Promise<void>;
  /** SIGKILLs the server and leaves it down until {@link OwnRedis.resume} (a test decides when it returns). */
  pause(): Promise<void>;
  /** Starts the server paused by {@link OwnRedis.pause} again, on the same data, and waits until it answers. */
  resume(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung Redis) until {@link OwnRedis.thaw}. */
  freeze(): void;
  /** SIGCONT after {@link OwnRedis.freeze}. */
  thaw(): void;
  /** SIGKILLs the server (a frozen one too) and removes its data. */
  stop(): Promise<void>;
}

/** Starts the drill's own redis-server and waits until it answers. */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-drill-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', dir], {
      stdio: 'ignore',
    });
    const probe = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await eventually(`redis on ${port} answers`, async () => {
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        return (await probe.ping()) === 'PONG';
      }, (ok) => ok, 10_000);
    } finally {
      probe.disconnect();
    }
  };
  const kill = async (): Promise<void> => {
    const running = child;
    if (!running || hasExited(running)) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    url,
    port,
    async restart(downMs = 1000, options = {}) {
      await kill();
      if (options.lose) for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    pause: kill,
    resume: start,
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
