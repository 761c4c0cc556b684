/**
 * The real service binary (dist/src/main.js, compiled by `npm test`'s tsc step) as a child process
 * whose JSON log lines are read as they come, and a private `redis-server` a test may stop, freeze
 * (SIGSTOP) or kill without touching the machine's shared Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { freePort } from '../../drills/support/free-port';
import { serviceBinary } from '../../drills/support/worker-process';
import { TEST_JWT_SECRET } from '../support/service';

/** One JSON log line of the child (or `{ message: <raw text> }` for a line that is not JSON). */
export type LogLine = Record<string, unknown> & { readonly message?: unknown };

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Every line written so far, stdout and stderr. */
  readonly lines: LogLine[];
  /** The first line (already written or yet to come) whose message is `message`. */
  waitFor(message: string, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process has exited: its code (or signal) and when (Date.now()). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Everything written to stderr that was not a JSON line (the startup failure message). */
  stderrText(): string;
  /** SIGKILLs the process if it still runs. */
  kill(): Promise<void>;
}

export function spawnService(env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [serviceBinary()], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  let stderrText = '';
  const reader = (fromStderr: boolean) => {
    let rest = '';
    return (chunk: Buffer): void => {
      rest += chunk.toString('utf8');
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const part of parts) {
        if (part.trim() === '') continue;
        let line: LogLine;
        try {
          line = JSON.parse(part) as LogLine;
        } catch {
          line = { message: part };
          if (fromStderr) stderrText += `${part}\n`;
        }
        lines.push(line);
        events.emit('line', line);
      }
    };
  };
  child.stdout?.on('data', reader(false));
  child.stderr?.on('data', reader(true));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, at: Date.now() }));
  return {
    child,
    lines,
    exited,
    stderrText: () => stderrText,
    waitFor(message, timeoutMs = 30_000) {
      const seen = lines.find((l) => l.message === message);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('line', onLine);
          reject(new Error(`no "${message}" line within ${timeoutMs} ms; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
        }, timeoutMs);
        const onLine = (line: LogLine): void => {
          if (line.message !== message) return;
          clearTimeout(timer);
          events.off('line', onLine);
          resolve(line);
        };
        events.on('line', onLine);
        // A process that exits first never writes it.
        void exited.then(() => {
          if (!lines.some((l) => l.message === message)) {
            clearTimeout(timer);
            events.off('line', onLine);
            reject(new Error(`exited before a "${message}" line; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
          }
        });
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A private redis-server (no persistence) on a free port. */
export interface PrivateRedis {
  readonly url: string;
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung Redis). */
  freeze(): void;
  /** SIGCONT after {@link PrivateRedis.freeze}. */
  thaw(): void;
  /** SIGKILL: connections refused from now on. */
  kill(): Promise<void>;
  /** SIGKILLs the server, waits `downMs`, and starts it again on the same port with no data (what a Redis without persistence comes back with). */
  restartEmpty(downMs: number): Promise<void>;
}

/** Starts redis-server on `port` and resolves once it says it accepts connections. */
async function runRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onExit = (): void => reject(new Error(`redis-server on ${port} exited: ${seen.slice(-500)}`));
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      if (seen.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
  return child;
}

async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child = await runRedisServer(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    kill: () => killProcess(child),
    async restartEmpty(downMs) {
      await killProcess(child);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await runRedisServer(port);
    },
  };
}
