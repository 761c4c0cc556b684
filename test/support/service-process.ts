/**
 * The real service binary (dist/src/main.js, compiled by `npm test`'s tsc step) as a child process
 * whose JSON log lines are read as they come (startup, readiness and shutdown tests).
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { killHard, spawnServiceBinary } from '../../drills/support/worker-process';
import { TEST_JWT_SECRET } from './service';

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

/** Starts the service binary with `env` over test defaults (port 0, the tests' JWT secret, `info` logs). */
export function spawnService(env: Record<string, string>): ServiceProcess {
  const child = spawnServiceBinary(
    {
      HOST: '127.0.0.1',
      PORT: '0',
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
      LOG_LEVEL: 'info',
      ...env,
    },
    ['ignore', 'pipe', 'pipe'],
  );
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
    kill: () => killHard({ child }),
  };
}
