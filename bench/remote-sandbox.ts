import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { LoadedSandbox, SandboxCommand, SandboxMessage } from './sandbox-process';

/** The benchmark's sandbox EHR running in a child process (see sandbox-process.ts). */
export interface RemoteSandbox {
  readonly baseUrl: string;
  readonly loaded: LoadedSandbox;
  readonly pid: number;
  /** Sets the latency added to every request, and resolves once the sandbox applies it. */
  setLatency(ms: number): Promise<void>;
  stop(): Promise<void>;
}

function nextMessage(child: ChildProcess, type: SandboxMessage['type']): Promise<SandboxMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: SandboxMessage): void => {
      if (message.type === 'failed') done(new Error(`sandbox process: ${message.error}`));
      else if (message.type === type) done(undefined, message);
    };
    const onExit = (code: number | null): void => done(new Error(`sandbox process exited (${code ?? 'signal'})`));
    const done = (err: Error | undefined, message?: SandboxMessage): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(message as SandboxMessage);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Forks the sandbox process (compiled beside this file) and waits until it holds `resources` resources. */
export async function startRemoteSandbox(resources: number): Promise<RemoteSandbox> {
  const child = fork(path.join(__dirname, 'sandbox-process.js'), [String(resources)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await nextMessage(child, 'ready');
  if (ready.type !== 'ready' || child.pid === undefined) throw new Error('sandbox process did not start');
  return {
    baseUrl: ready.baseUrl,
    loaded: ready.loaded,
    pid: child.pid,
    async setLatency(ms) {
      const applied = nextMessage(child, 'latency-set');
      const command: SandboxCommand = { type: 'latency', ms };
      child.send(command);
      await applied;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await exited;
    },
  };
}
