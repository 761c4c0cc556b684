/**
 * Case assembly off the event loop. Building a case bundle is seconds of CPU for a large case
 * (50,000 resources: about 4 s here, measured with `bench:assemble`), all synchronous: run on the
 * main thread it would hold the API (health checks included) and every other job of the process —
 * pulls, deliveries — for that long. So the CPU part (`build-assembly.ts`) runs in one
 * `node:worker_threads` thread, one assembly at a time, while the main thread keeps serving; the
 * main thread only reads the raw store and stores the result.
 *
 * The thread has its own V8 heap, capped at the assembly memory budget (`ASSEMBLY_MEMORY_MB`): a case
 * that runs it out of memory fails that assembly ({@link AssemblyTooLargeError}, no retries), and
 * the next one starts a fresh thread; the process and its other work go on. After `idleMs` without
 * work (default 1 s, `ASSEMBLY_THREAD_IDLE_MS`) the thread ends, giving its heap back to the system:
 * an idle thread would otherwise keep a large case's garbage (hundreds of MB) until its next
 * assembly. Starting one costs ~0.2 s, small beside the assemblies that need it.
 *
 * Worker script: the compiled `assembly-worker.js` next to this module, or its ts-jest bootstrap
 * (`src/util/worker-source.ts`).
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import { AssemblyTooLargeError, processAssemblyMemory } from './assembly-memory';
import type { AssemblyThreadReply, AssemblyThreadRequest } from './assembly-thread-protocol';
import type { AssemblyJob, BuiltSummary, RawText } from './build-assembly';

const MB = 1024 * 1024;

export interface AssemblyThreadOptions {
  /** The thread's V8 old-generation cap in bytes, read at each start (default: the process's assembly budget). */
  readonly heapBytes?: () => number;
  /** The thread ends after this long without work (ms; default 1 s). */
  readonly idleMs?: number;
  /** Limit for the thread to start and say it is ready (ms; default 60 s: the ts-jest bootstrap transpiles on load). */
  readonly startupTimeoutMs?: number;
  /** Override the worker code (unusual deployment layouts). */
  readonly source?: WorkerSource;
}

/** The assembly thread stopped (crashed, did not start, was closed) before it answered. */
export class AssemblyThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssemblyThreadError';
  }
}

/** The answers a request waits for. */
type Expected = 'built' | 'part';
type ReplyOf<K extends Expected> = Extract<AssemblyThreadReply, { readonly type: K }>;

interface Pending {
  readonly id: number;
  readonly expects: Expected;
  readonly resolve: (reply: AssemblyThreadReply) => void;
  readonly reject: (err: Error) => void;
}

/** An assembly built in the thread, its bundle held there. */
export interface BuiltInThread extends BuiltSummary {
  /** The bundle's text as UTF-8, part by part (`bundleJsonByteParts`), each serialised in the thread when asked for. */
  readonly parts: AsyncIterable<Uint8Array>;
}

/** One assembly thread, started on demand, one assembly at a time in the order asked (see the module comment). */
export class AssemblyThread {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private pending: Pending | undefined;
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private heapBytes = 0;
  /** Fails the start under way (the thread died or timed out before it was ready). */
  private onStartFailure: ((err: Error) => void) | undefined;
  /** Resources of the assembly under way (to name a case that ran the thread out of memory). */
  private resources = 0;
  private idleMs: number;
  /** Threads started so far (tests). */
  started = 0;

  constructor(private readonly options: AssemblyThreadOptions = {}) {
    this.idleMs = options.idleMs ?? 1000;
  }

  /** Whether the thread is running now (started, not ended). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Sets how long the thread waits for work before it ends (`ASSEMBLY_THREAD_IDLE_MS`, at start-up). */
  setIdleMs(ms: number): void {
    this.idleMs = ms;
  }

  /**
   * Builds an assembly in the thread and lets `use` take its text (and store it). The thread is this
   * assembly's from `load` until `use` settles: `load` reads what the job needs, handing the raw
   * store's resources to `sendRaw` batch by batch as it reads them (the thread parses them meanwhile;
   * this thread never holds the whole case), and the job it returns is sent with the build.
   * Rejects with the build's own error, or {@link AssemblyTooLargeError} / {@link AssemblyThreadError}.
   */
  async build<T>(load: (sendRaw: (batch: readonly RawText[]) => void) => Promise<AssemblyJob>, use: (built: BuiltInThread) => Promise<T>): Promise<T> {
    this.waiting += 1;
    clearTimeout(this.idleTimer);
    const previous = this.tail;
    let done: () => void = () => undefined;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    this.waiting -= 1;
    try {
      return await this.buildNow(load, use);
    } finally {
      this.worker?.unref();
      if (this.waiting === 0) this.armIdle();
      done();
    }
  }

  private async buildNow<T>(load: (sendRaw: (batch: readonly RawText[]) => void) => Promise<AssemblyJob>, use: (built: BuiltInThread) => Promise<T>): Promise<T> {
    const id = this.nextId++;
    const worker = await this.start();
    worker.ref();
    let taken = false;
    try {
      // The raw batches go to the thread as they are read (it parses them meanwhile); none is kept here.
      worker.postMessage({ type: 'begin', id } satisfies AssemblyThreadRequest);
      this.resources = 0;
      const job = await load((batch) => {
        this.resources += batch.length;
        worker.postMessage({ type: 'raw', id, batch } satisfies AssemblyThreadRequest);
      });
      this.resources += job.built.length;
      const built = await this.send(worker, id, 'built', { type: 'build', id, job });
      return await use({ ...built.built, parts: this.partsOf(worker, id, () => (taken = true)) });
    } finally {
      // Not taken to the end of its text (the read failed, the version was refused as stale, an INSERT
      // failed): the thread lets go of what it holds for this assembly.
      if (!taken) this.worker?.postMessage({ type: 'drop', id } satisfies AssemblyThreadRequest);
    }
  }

  /** The bundle's parts, asked of the thread that holds it one at a time (it gone, the next ask fails). */
  private async *partsOf(worker: Worker, id: number, onEnd: () => void): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const reply = await this.send(worker, id, 'part', { type: 'part', id });
      if (reply.part === undefined) {
        onEnd();
        return;
      }
      yield reply.part;
    }
  }

  /**
   * Sends `request` and gives the promise of its answer, of the type `expects` ({@link answer} refuses
   * any other). Synchronous: the request is not held here.
   */
  private send<K extends Expected>(worker: Worker, id: number, expects: K, request: AssemblyThreadRequest): Promise<ReplyOf<K>> {
    if (worker !== this.worker) return Promise.reject(new AssemblyThreadError('the assembly thread stopped'));
    const answer = new Promise<ReplyOf<K>>((resolve, reject) => {
      this.pending = { id, expects, resolve: (reply) => resolve(reply as ReplyOf<K>), reject };
    });
    worker.postMessage(request);
    return answer;
  }

  /** Ends the thread (a later job starts a new one); a job under way fails with {@link AssemblyThreadError}. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    if (!worker) return;
    this.forget(worker, new AssemblyThreadError('the assembly thread was closed'));
    await worker.terminate();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.close(), this.idleMs);
    this.idleTimer.unref();
  }

  private start(): Promise<Worker> {
    const running = this.worker;
    if (running && this.ready) return this.ready.then(() => running);
    this.heapBytes = (this.options.heapBytes ?? (() => processAssemblyMemory.budgetBytes))();
    const source = this.options.source ?? workerSourceFor(__dirname, 'assembly-worker');
    const worker = new Worker('file' in source ? source.file : source.eval, {
      eval: 'eval' in source,
      resourceLimits: { maxOldGenerationSizeMb: Math.max(64, Math.ceil(this.heapBytes / MB)) },
      stdout: false,
      stderr: false,
    });
    this.started += 1;
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forget(worker, new AssemblyThreadError('the assembly thread did not start in time'));
        void worker.terminate();
      }, this.options.startupTimeoutMs ?? 60_000);
      worker.once('message', (reply: AssemblyThreadReply) => {
        clearTimeout(timer);
        this.onStartFailure = undefined;
        if (reply.type === 'ready') resolve();
        else reject(new AssemblyThreadError(`the assembly thread answered ${reply.type} before it was ready`));
      });
      this.onStartFailure = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
    worker.on('message', (reply: AssemblyThreadReply) => this.answer(reply));
    worker.on('error', (err: Error & { code?: string }) => {
      this.forget(
        worker,
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new AssemblyTooLargeError(this.resources, this.heapBytes)
          : new AssemblyThreadError(`the assembly thread crashed: ${err.message}`),
      );
    });
    worker.on('exit', (code) => this.forget(worker, new AssemblyThreadError(`the assembly thread exited (code ${code})`)));
    return this.ready.then(() => worker);
  }

  private answer(reply: AssemblyThreadReply): void {
    const pending = this.pending;
    if (reply.type === 'ready' || !pending || pending.id !== reply.id) return;
    this.pending = undefined;
    if (reply.type === pending.expects) {
      pending.resolve(reply);
      return;
    }
    if (reply.type !== 'failed') {
      pending.reject(new AssemblyThreadError(`the assembly thread answered ${reply.type} to a request for ${pending.expects}`));
      return;
    }
    const err = new Error(reply.error.message);
    err.name = reply.error.name;
    if (reply.error.stack !== undefined) err.stack = reply.error.stack;
    pending.reject(err);
  }

  /** Drops `worker` (if it is the current one): its job under way, or its start, fails with `err`. */
  private forget(worker: Worker, err: Error): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    this.ready = undefined;
    this.onStartFailure?.(err);
    this.onStartFailure = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }
}

/** The process's assembly thread (assemblies share it: one at a time, like the CPU it stands for). */
export const processAssemblyThread = new AssemblyThread();
