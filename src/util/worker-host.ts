/**
 * The lifecycle of one `node:worker_threads` thread that does a kind of CPU work for the main thread
 * (the assembly thread, the PDF thread): started on demand, it says `ready` within a start-up limit;
 * it takes one job at a time, in the order asked, each job's requests answered by id; it holds the
 * process open only while a job runs, and ends after `idleMs` without work (a later job starts a
 * fresh one). A thread that crashes, exits, does not start in time or is closed fails the job or
 * the start under way with the subclass's own error; a request the worker failed rejects with the
 * error it threw, rebuilt from `{ name, message, stack }`.
 *
 * A subclass says how to start its worker ({@link WorkerHost.spawn}), what its errors are
 * ({@link WorkerHost.threadError}, and optionally {@link WorkerHost.crashed} and
 * {@link WorkerHost.revived}), and runs its jobs with {@link WorkerHost.exclusive} and
 * {@link WorkerHost.request}.
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { WorkerSource } from './worker-source';

/** The worker's first message: loaded, it takes requests. */
export interface ReadyReply {
  readonly type: 'ready';
}

/** An error thrown in the worker, as it sends it back. */
export interface ThreadErrorData {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/** The answer to a request that threw in the worker. */
export interface FailedReply {
  readonly type: 'failed';
  readonly id: number;
  readonly error: ThreadErrorData;
}

/** A reply to the request with the same id. */
export interface Answer {
  readonly type: string;
  readonly id: number;
}

const isAnswer = (reply: { readonly type: string }): reply is Answer => reply.type !== 'ready';
const isFailed = (reply: Answer): reply is FailedReply => reply.type === 'failed';

/** The types of answer a request can wait for (not `ready`, not `failed`). */
export type Expected<Reply extends { readonly type: string }> = Exclude<Reply['type'], 'ready' | 'failed'>;

export interface WorkerHostOptions {
  /** The thread in messages: `the ${name} exited (code 1)`. */
  readonly name: string;
  /** The thread ends after this long without work (ms). */
  readonly idleMs: number;
  /** Limit for the thread to start and say it is ready (ms; default 60 s: the Jest bootstrap transpiles on load). */
  readonly startupTimeoutMs?: number | undefined;
}

interface Pending<Reply> {
  readonly id: number;
  readonly expects: string;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
}

/** A Worker running `source`, its stdout and stderr going to the process's own. */
export function startWorker(source: WorkerSource, resourceLimits?: ResourceLimits): Worker {
  return new Worker('file' in source ? source.file : source.eval, { eval: 'eval' in source, resourceLimits, stdout: false, stderr: false });
}

/**
 * One worker thread, started on demand, one job at a time in the order asked (see the module comment).
 * `Request` and `Reply` are the messages to and from the worker; every reply but `ready` carries the
 * id of the request it answers.
 */
export abstract class WorkerHost<Request extends { readonly id: number }, Reply extends ReadyReply | Answer> {
  private worker: Worker | undefined;
  /** Why each thread stopped, once it has; and a promise that settles then (for waits outside a request). */
  private readonly stops = new WeakMap<Worker, { reason?: Error; readonly stopped: Promise<void>; readonly settle: () => void }>();
  private ready: Promise<void> | undefined;
  private pending: Pending<Reply> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Fails the start under way (the thread died or timed out before it was ready). */
  private onStartFailure: ((err: Error) => void) | undefined;
  private idleMs: number;
  private readonly threadName: string;
  private readonly startupTimeoutMs: number;
  /** Threads started so far (tests). */
  started = 0;

  constructor(options: WorkerHostOptions) {
    this.threadName = options.name;
    this.idleMs = options.idleMs;
    this.startupTimeoutMs = options.startupTimeoutMs ?? 60_000;
  }

  /** Starts the worker (called at each start; may throw, failing the job that wanted it). */
  protected abstract spawn(): Worker;

  /** The thread's own error: it stopped (crashed, did not start, was closed) or answered out of turn. */
  protected abstract threadError(message: string): Error;

  /** The error for a job under way when the thread raised `err` (default: {@link threadError}, `crashed: …`). */
  protected crashed(err: Error & { code?: string }): Error {
    return this.threadError(`the ${this.threadName} crashed: ${err.message}`);
  }

  /** The error a request threw in the worker, as the main thread would have thrown it (its stack is set after). */
  protected revived(error: ThreadErrorData): Error {
    const err = new Error(error.message);
    err.name = error.name;
    return err;
  }

  /** Whether the thread is running now (started, not ended). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** The thread running now, if any. */
  protected get current(): Worker | undefined {
    return this.worker;
  }

  /** Sets how long the thread waits for work before it ends (at start-up, from the configuration). */
  setIdleMs(ms: number): void {
    this.idleMs = ms;
  }

  /**
   * Runs `job` once the jobs asked before it are done, with the thread (started if need be) and a
   * fresh request id; the thread keeps the process alive until `job` settles.
   */
  protected async exclusive<T>(job: (worker: Worker, id: number) => Promise<T>): Promise<T> {
    this.waiting += 1;
    clearTimeout(this.idleTimer);
    const previous = this.tail;
    let done: () => void = () => undefined;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    this.waiting -= 1;
    try {
      const worker = await this.start();
      worker.ref();
      return await job(worker, this.nextId++);
    } finally {
      // Idle, the thread does not keep the process alive (nor jest), and ends after idleMs.
      this.worker?.unref();
      if (this.waiting === 0) this.armIdle();
      done();
    }
  }

  /**
   * Sends `request` and gives the promise of its answer, of the type `expects` ({@link answer} refuses
   * any other). Synchronous: the request is not held here.
   */
  protected request<K extends Expected<Reply>>(worker: Worker, request: Request, expects: K): Promise<Extract<Reply, { readonly type: K }>> {
    if (worker !== this.worker) return Promise.reject(this.stopReason(worker) ?? this.threadError(`the ${this.threadName} stopped`));
    const answer = new Promise<Extract<Reply, { readonly type: K }>>((resolve, reject) => {
      this.pending = { id: request.id, expects, resolve: (reply) => resolve(reply as Extract<Reply, { readonly type: K }>), reject };
    });
    try {
      worker.postMessage(request);
    } catch (err) {
      // Not cloneable (a function, a class instance with private state): a programming error.
      this.pending = undefined;
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return answer;
  }

  /** Why `worker` stopped (its crash, exit or close, as the job under way was failed with), or undefined while it runs. */
  protected stopReason(worker: Worker): Error | undefined {
    return this.stops.get(worker)?.reason;
  }

  /** Settles when `worker` stops (at once if it has): for a job waiting on the thread other than by a request. */
  protected whenStopped(worker: Worker): Promise<void> {
    return this.stops.get(worker)?.stopped ?? Promise.resolve();
  }

  /** Ends the thread (a later job starts a new one); a job under way fails with {@link threadError}. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    if (!worker) return;
    this.forget(worker, this.threadError(`the ${this.threadName} was closed`));
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
    const worker = this.spawn();
    let settle: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (settle = resolve));
    this.stops.set(worker, { stopped, settle });
    this.started += 1;
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forget(worker, this.threadError(`the ${this.threadName} did not start in time`));
        void worker.terminate();
      }, this.startupTimeoutMs);
      worker.once('message', (reply: Reply) => {
        clearTimeout(timer);
        this.onStartFailure = undefined;
        if (reply.type === 'ready') resolve();
        else reject(this.threadError(`the ${this.threadName} answered ${reply.type} before it was ready`));
      });
      this.onStartFailure = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
    worker.on('message', (reply: Reply) => this.answer(reply));
    worker.on('error', (err: Error & { code?: string }) => this.forget(worker, this.crashed(err)));
    worker.on('exit', (code) => this.forget(worker, this.threadError(`the ${this.threadName} exited (code ${code})`)));
    return this.ready.then(() => worker);
  }

  private answer(reply: Reply): void {
    const pending = this.pending;
    if (!isAnswer(reply) || !pending || pending.id !== reply.id) return;
    this.pending = undefined;
    if (reply.type === pending.expects) {
      pending.resolve(reply);
      return;
    }
    if (!isFailed(reply)) {
      pending.reject(this.threadError(`the ${this.threadName} answered ${reply.type} to a request for ${pending.expects}`));
      return;
    }
    const err = this.revived(reply.error);
    if (reply.error.stack !== undefined) err.stack = reply.error.stack;
    pending.reject(err);
  }

  /** Drops `worker` (if it is the current one): its job under way, or its start, fails with `err`. */
  private forget(worker: Worker, err: Error): void {
    if (worker !== this.worker) return;
    const stop = this.stops.get(worker);
    if (stop) {
      stop.reason = err;
      stop.settle();
    }
    this.worker = undefined;
    this.ready = undefined;
    this.onStartFailure?.(err);
    this.onStartFailure = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }
}
