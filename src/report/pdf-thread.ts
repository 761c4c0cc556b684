/**
 * PDF rendering off the event loop. pdf-lib is synchronous CPU work: a typical opinion report takes
 * 50–90 ms, a long one (200 answers, CJK text in the fallback font) 220–670 ms, a receipt tens of
 * ms — on the main thread the API (health checks, EHR clients, case managers) would wait for each.
 * So the opinion report (`report-pdf.ts`) and the payment receipt (`billing/receipt-pdf.ts`) are
 * rendered in one `node:worker_threads` thread, one PDF at a time in the order asked, while the main
 * thread keeps serving. The job is plain data (structured clone; `Date`s included) with the font
 * paths; the thread reads and caches the fonts itself, and the PDF comes back in a transferred
 * ArrayBuffer (not copied). The bytes are the same as rendered on the main thread (the render takes
 * its dates from the input and pdf-lib seeds its own name suffixes).
 *
 * Started on demand; after `idleMs` without work (`PDF_THREAD_IDLE_MS`, default 30 s) the thread
 * ends and its memory (pdf-lib, fontkit, the parsed fonts: ~60 MB RSS after a long report) goes
 * back to the system. Longer than the assembly thread's 1 s: an idle PDF thread holds little, and a
 * new one costs ~0.3 s (loading pdf-lib, fontkit and the fonts) on the signing that starts it. A
 * thread that crashes or does not start fails the render under way with {@link PdfThreadError};
 * the next render starts a fresh one. The service closes it when it stops.
 *
 * Worker script: the compiled `pdf-worker.js` next to this module, or its ts-jest bootstrap
 * (`src/util/worker-source.ts`).
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import type { Receipt } from '../billing/receipt';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import type { PdfJob, PdfThreadReply, PdfThreadRequest } from './pdf-thread-protocol';
import { ReportFontError, type ReportFontPaths } from './report-fonts';
import type { ReportInput } from './report-pdf';

export interface PdfThreadOptions {
  /** The thread ends after this long without work (ms; default 30 s). */
  readonly idleMs?: number;
  /** Limit for the thread to start and say it is ready (ms; default 60 s: the ts-jest bootstrap transpiles on load). */
  readonly startupTimeoutMs?: number;
  /** Override the worker code (unusual deployment layouts; tests). */
  readonly source?: WorkerSource;
}

/** The PDF thread stopped (crashed, did not start, was closed) before it answered. */
export class PdfThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PdfThreadError';
  }
}

interface Pending {
  readonly id: number;
  readonly resolve: (pdf: ArrayBuffer) => void;
  readonly reject: (err: Error) => void;
}

/** One PDF thread, started on demand, one render at a time in the order asked (see the module comment). */
export class PdfThread {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private pending: Pending | undefined;
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Fails the start under way (the thread died or timed out before it was ready). */
  private onStartFailure: ((err: Error) => void) | undefined;
  private idleMs: number;
  /** Threads started so far (tests). */
  started = 0;

  constructor(private readonly options: PdfThreadOptions = {}) {
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** Whether the thread is running now (started, not ended). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Resolves when the thread running now has ended (idle, closed or crashed); at once when none runs. */
  async ended(): Promise<void> {
    const worker = this.worker;
    if (worker) await new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  }

  /** Sets how long the thread waits for work before it ends (`PDF_THREAD_IDLE_MS`, at start-up). */
  setIdleMs(ms: number): void {
    this.idleMs = ms;
  }

  /**
   * The opinion report as `renderReportPdf` renders it, rendered in the thread.
   * @throws ReportFontError when the fonts cannot be read; PdfThreadError when the thread stopped
   */
  renderReport(input: ReportInput, fonts: ReportFontPaths = {}): Promise<Uint8Array> {
    return this.render({ kind: 'report', input, fonts });
  }

  /**
   * The receipt as `renderReceiptPdf` renders it, rendered in the thread.
   * @throws ReportFontError when the fonts cannot be read; PdfThreadError when the thread stopped
   */
  renderReceipt(receipt: Receipt, now: Date, fonts: ReportFontPaths = {}): Promise<Uint8Array> {
    return this.render({ kind: 'receipt', receipt, now, fonts });
  }

  /** Renders `job` once the renders asked before it are done. */
  async render(job: PdfJob): Promise<Uint8Array> {
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
      return new Uint8Array(await this.send(worker, { type: 'render', id: this.nextId++, job }));
    } finally {
      // Idle, the thread does not keep the process alive (nor jest), and ends after idleMs.
      this.worker?.unref();
      if (this.waiting === 0) this.armIdle();
      done();
    }
  }

  /** Sends `request` and gives the promise of its PDF. */
  private send(worker: Worker, request: PdfThreadRequest): Promise<ArrayBuffer> {
    if (worker !== this.worker) return Promise.reject(new PdfThreadError('the PDF thread stopped'));
    const answer = new Promise<ArrayBuffer>((resolve, reject) => {
      this.pending = { id: request.id, resolve, reject };
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

  /** Ends the thread (a later render starts a new one); a render under way fails with {@link PdfThreadError}. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    if (!worker) return;
    this.forget(worker, new PdfThreadError('the PDF thread was closed'));
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
    let worker: Worker;
    try {
      const source = this.options.source ?? workerSourceFor(__dirname, 'pdf-worker');
      worker = new Worker('file' in source ? source.file : source.eval, { eval: 'eval' in source, stdout: false, stderr: false });
    } catch (err) {
      return Promise.reject(new PdfThreadError(`the PDF thread could not start: ${err instanceof Error ? err.message : String(err)}`));
    }
    this.started += 1;
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forget(worker, new PdfThreadError('the PDF thread did not start in time'));
        void worker.terminate();
      }, this.options.startupTimeoutMs ?? 60_000);
      worker.once('message', (reply: PdfThreadReply) => {
        clearTimeout(timer);
        this.onStartFailure = undefined;
        if (reply.type === 'ready') resolve();
        else reject(new PdfThreadError(`the PDF thread answered ${reply.type} before it was ready`));
      });
      this.onStartFailure = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
    worker.on('message', (reply: PdfThreadReply) => this.answer(reply));
    worker.on('error', (err: Error) => this.forget(worker, new PdfThreadError(`the PDF thread crashed: ${err.message}`)));
    worker.on('exit', (code) => this.forget(worker, new PdfThreadError(`the PDF thread exited (code ${code})`)));
    return this.ready.then(() => worker);
  }

  private answer(reply: PdfThreadReply): void {
    const pending = this.pending;
    if (reply.type === 'ready' || !pending || pending.id !== reply.id) return;
    this.pending = undefined;
    if (reply.type === 'rendered') {
      pending.resolve(reply.pdf);
      return;
    }
    // The render's own error, as the main thread would have thrown it (a font error keeps its class).
    let err: Error;
    if (reply.error.name === 'ReportFontError') err = new ReportFontError(reply.error.message);
    else {
      err = new Error(reply.error.message);
      err.name = reply.error.name;
    }
    if (reply.error.stack !== undefined) err.stack = reply.error.stack;
    pending.reject(err);
  }

  /** Drops `worker` (if it is the current one): its render under way, or its start, fails with `err`. */
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

/** The process's PDF thread (the opinion report and the receipts share it: one render at a time). */
export const processPdfThread = new PdfThread();
