/**
 * DICOM header parsing off the main thread, with a hard time limit: a pathological file can neither
 * crash nor stall the process that ingests uploads.
 *
 * Each request runs in a `node:worker_threads` Worker (one request per thread at a time) with a V8 heap
 * cap. If the answer does not come within `timeoutMs` the thread is terminated (which also stops a busy
 * loop) and the request resolves `{ ok: false, code: 'timeout' }`. A thread that runs out of heap
 * (`ERR_WORKER_OUT_OF_MEMORY`) while it reads a file resolves `too-large`: like the time limit, a
 * verdict on the file (ingest lists it `unparsed` with the reason and reads the rest), as
 * `pdf-inspect.ts` does for PDFs — retrying could only run out again. A crash, an exit, or running out
 * of memory before the thread is ready is the machine's failure: `worker-failed` (ingest retries). The
 * next request starts a fresh thread. Nothing here rejects except misuse.
 * @see https://nodejs.org/docs/latest-v20.x/api/errors.html#err_worker_out_of_memory
 *
 * Worker script: the compiled `dicom-worker.js` next to this module, or its Jest bootstrap
 * (`src/util/worker-source.ts`): tests exercise the real worker, timeout and termination.
 *
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import type { HashedDicomFile } from './dicom-file-hash';
import type { DicomParseResult } from './dicom-header';
import type { DicomWorkerReply, DicomWorkerRequest } from './dicom-worker-protocol';

export interface DicomWorkerOptions {
  /** Hard limit per request, from dispatch to answer (ms). */
  readonly timeoutMs: number;
  /** Threads (default 1). */
  readonly size?: number;
  /** Limit for a thread to start and say it is ready (default 30 s; the Jest bootstrap is slow). */
  readonly startupTimeoutMs?: number;
  /** V8 old-generation cap per thread (default {@link DICOM_WORKER_MAX_OLD_GENERATION_MB}). */
  readonly maxOldGenerationSizeMb?: number;
  /** First read size for path inputs (see `parseDicomFileSync`). */
  readonly headBytes?: number;
  /** Override the worker code (tests; unusual deployment layouts). Default: {@link defaultWorkerSource}. */
  readonly source?: WorkerSource;
}

/** A path, or the bytes of a whole file. */
export type DicomInput = string | Uint8Array;

/** A request that did not get an answer from the worker. `timeout` and `too-large` are verdicts on the file. */
interface Unanswered {
  readonly code: 'timeout' | 'too-large' | 'worker-failed';
  readonly reason: string;
}

/** Default V8 old-generation cap of a parsing thread (MB); see `dicom-parse-budget.ts` for what fits. */
export const DICOM_WORKER_MAX_OLD_GENERATION_MB = 256;

/** The `too-large` reason of a file whose parse exhausted its thread's heap (log-safe: no content). */
export function outOfMemoryReason(heapMb: number): string {
  return `too large to read: the DICOM parsing thread ran out of memory on this file (heap limit ${heapMb} MB); not indexed`;
}

/** A request without its id (distributes over the union). */
type Body = DicomWorkerRequest extends infer R ? (R extends DicomWorkerRequest ? Omit<R, 'id'> : never) : never;

interface Job {
  readonly body: Body;
  readonly transfer: ArrayBuffer[];
  readonly settle: (outcome: DicomWorkerReply | Unanswered) => void;
}

/** The worker script for this build: compiled JS next to this file, else the Jest bootstrap. */
export function defaultWorkerSource(): WorkerSource {
  return workerSourceFor(__dirname, 'dicom-worker');
}

/** One thread, one request at a time. */
class WorkerSlot {
  private worker: Worker | undefined;
  private ready: Promise<Unanswered | undefined> | undefined;
  private onReady: ((failure: Unanswered | undefined) => void) | undefined;
  private pending: { id: number; settle: (outcome: DicomWorkerReply | Unanswered) => void; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  /** Threads started by this slot (1 + restarts after timeouts and crashes). */
  started = 0;
  busy = false;

  constructor(
    private readonly options: DicomWorkerOptions,
    private readonly source: WorkerSource,
  ) {}

  async run(job: Job): Promise<void> {
    this.busy = true;
    try {
      const startFailure = await this.start();
      if (startFailure) return job.settle(startFailure);
      const worker = this.worker;
      if (!worker) return job.settle({ code: 'worker-failed', reason: 'worker thread gone before the request' });
      const id = this.nextId++;
      await new Promise<void>((done) => {
        const timer = setTimeout(() => {
          this.finish(id, { code: 'timeout', reason: `timeout: no answer within ${this.options.timeoutMs} ms; worker terminated` });
          this.discard(worker, true);
        }, this.options.timeoutMs);
        this.pending = {
          id,
          timer,
          settle: (outcome) => {
            job.settle(outcome);
            done();
          },
        };
        worker.postMessage({ ...job.body, id } as DicomWorkerRequest, job.transfer);
      });
    } finally {
      this.busy = false;
    }
  }

  private start(): Promise<Unanswered | undefined> {
    if (this.ready) return this.ready;
    this.started += 1;
    const worker = new Worker('file' in this.source ? this.source.file : this.source.eval, {
      eval: 'eval' in this.source,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
      stdout: false,
      stderr: false,
    });
    worker.unref();
    this.worker = worker;
    this.ready = new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.discard(worker, true);
      }, this.options.startupTimeoutMs ?? 30_000);
      this.onReady = (failure) => {
        clearTimeout(timer);
        this.onReady = undefined;
        resolve(failure);
      };
    });
    worker.on('message', (reply: DicomWorkerReply) => {
      if (worker !== this.worker) return;
      if (reply.type === 'ready') this.onReady?.(undefined);
      else this.finish(reply.id, reply);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code !== 'ERR_WORKER_OUT_OF_MEMORY') return this.fail(worker, `worker crashed: ${err.message}`);
      // A request is pending only once the thread is ready: its file exhausted the heap, a verdict.
      if (this.pending) return this.fail(worker, outOfMemoryReason(this.heapMb), 'too-large');
      this.fail(worker, 'worker ran out of memory before it was ready');
    });
    worker.on('exit', (code) => this.fail(worker, `worker exited (code ${code})`));
    return this.ready;
  }

  private finish(id: number, outcome: DicomWorkerReply | Unanswered): void {
    const pending = this.pending;
    if (!pending || pending.id !== id) return;
    clearTimeout(pending.timer);
    this.pending = undefined;
    pending.settle(outcome);
  }

  /** The thread's V8 heap cap (MB). */
  private get heapMb(): number {
    return this.options.maxOldGenerationSizeMb ?? DICOM_WORKER_MAX_OLD_GENERATION_MB;
  }

  /** The thread ended without answering: the pending request (if any) resolves `code`; the thread is forgotten. */
  private fail(worker: Worker, reason: string, code: Unanswered['code'] = 'worker-failed'): void {
    if (worker !== this.worker) return;
    const failure: Unanswered = { code, reason };
    this.onReady?.({ code: 'worker-failed', reason });
    if (this.pending) this.finish(this.pending.id, failure);
    this.discard(worker, false);
  }

  /** Forgets the thread (a new one starts on the next request); terminates it when asked. */
  private discard(worker: Worker, terminate: boolean): void {
    if (worker === this.worker) {
      this.worker = undefined;
      this.ready = undefined;
      this.onReady?.({ code: 'worker-failed', reason: 'worker did not start in time' });
    }
    if (terminate) void worker.terminate();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (this.pending) this.finish(this.pending.id, { code: 'worker-failed', reason: 'pool closed' });
    if (worker) {
      this.discard(worker, false);
      await worker.terminate();
    }
  }
}

/**
 * A small pool of DICOM parsing threads. Requests queue FIFO and go to the first free thread; each has
 * the pool's hard time limit.
 */
export class DicomWorkerPool {
  private readonly slots: WorkerSlot[];
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(private readonly options: DicomWorkerOptions) {
    const source = options.source ?? defaultWorkerSource();
    this.slots = Array.from({ length: Math.max(1, options.size ?? 1) }, () => new WorkerSlot(options, source));
  }

  /** Threads started so far (more than `size` after timeouts or crashes). */
  get threadsStarted(): number {
    return this.slots.reduce((n, s) => n + s.started, 0);
  }

  /** Parses a file (by path: the worker reads only the head it needs) or whole-file bytes (copied). */
  async parse(input: DicomInput): Promise<DicomParseResult> {
    let body: Body;
    let transfer: ArrayBuffer[] = [];
    if (typeof input === 'string') {
      body = { op: 'parse-path', path: input, ...this.head() };
    } else {
      // A fresh copy: structured clone of a view would copy its whole backing buffer (e.g. Buffer's pool).
      const copy = new Uint8Array(input);
      body = { op: 'parse-bytes', bytes: copy };
      transfer = [copy.buffer];
    }
    const outcome = await this.submit(body, transfer);
    if ('code' in outcome) return { ok: false, code: outcome.code, reason: outcome.reason };
    if (outcome.type === 'parsed') return outcome.result;
    return { ok: false, code: 'worker-failed', reason: 'unexpected worker reply' };
  }

  /**
   * Reads a file once in the worker, in order, hashing it (SHA-256) and parsing its header, holding only
   * the prefix the header needs (`dicom-file-hash.ts`). A request the worker did not answer (time
   * limit, out of memory, failure) gives `{ error, code }` without a hash.
   */
  async hashAndParse(filePath: string): Promise<HashedDicomFile | { readonly error: string; readonly code: DicomParseFailureCode }> {
    const outcome = await this.submit({ op: 'hash-parse-path', path: filePath, ...this.head() }, []);
    if ('code' in outcome) return { error: outcome.reason, code: outcome.code };
    if (outcome.type === 'hashed') return 'error' in outcome.file ? { error: outcome.file.error, code: 'io' } : outcome.file;
    return { error: 'unexpected worker reply', code: 'worker-failed' };
  }

  /** Whether {@link close} was called: the process is stopping, and what failed for it is no verdict on a file. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Terminates every thread; queued requests resolve `worker-failed`. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.settle({ code: 'worker-failed', reason: 'pool closed' });
    await Promise.all(this.slots.map((s) => s.close()));
  }

  private head(): { headBytes?: number } {
    return this.options.headBytes === undefined ? {} : { headBytes: this.options.headBytes };
  }

  private submit(body: Body, transfer: ArrayBuffer[]): Promise<DicomWorkerReply | Unanswered> {
    if (this.closed) return Promise.resolve({ code: 'worker-failed', reason: 'pool closed' });
    return new Promise((settle) => {
      this.queue.push({ body, transfer, settle });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const job = this.queue.shift();
      if (!job) return;
      void slot.run(job).then(() => this.pump());
    }
  }
}

type DicomParseFailureCode = 'io' | Unanswered['code'];

/**
 * Parses one file in a fresh worker thread and ends the thread: `timeoutMs` is the hard limit on the
 * parse (the thread's start-up is limited separately, see {@link DicomWorkerOptions.startupTimeoutMs}).
 * For many files keep a {@link DicomWorkerPool} instead (a thread costs ~30 ms to start).
 */
export async function parseDicomInWorker(input: DicomInput, options: Omit<DicomWorkerOptions, 'size'>): Promise<DicomParseResult> {
  const pool = new DicomWorkerPool({ ...options, size: 1 });
  try {
    return await pool.parse(input);
  } finally {
    await pool.close();
  }
}
