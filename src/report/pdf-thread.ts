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
 * the next render starts a fresh one. The service closes it when it stops. The thread's lifecycle is
 * {@link WorkerHost}'s (`src/util/worker-host.ts`); this module adds the render protocol.
 *
 * Worker script: the compiled `pdf-worker.js` next to this module, or its Jest bootstrap
 * (`src/util/worker-source.ts`).
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import type { Receipt } from '../billing/receipt';
import { startWorker, WorkerHost, type ThreadErrorData } from '../util/worker-host';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import type { PdfJob, PdfThreadReply, PdfThreadRequest } from './pdf-thread-protocol';
import { ReportFontError, type ReportFontPaths } from './report-fonts';
import type { ReportInput } from './report-pdf';

export interface PdfThreadOptions {
  /** The thread ends after this long without work (ms; default 30 s). */
  readonly idleMs?: number;
  /** Limit for the thread to start and say it is ready (ms; default 60 s: the Jest bootstrap transpiles on load). */
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

/**
 * One PDF thread, started on demand, one render at a time in the order asked (see the module
 * comment); `running`, `started`, `setIdleMs` and `close` are {@link WorkerHost}'s.
 */
export class PdfThread extends WorkerHost<PdfThreadRequest, PdfThreadReply> {
  constructor(private readonly options: PdfThreadOptions = {}) {
    super({ name: 'PDF thread', idleMs: options.idleMs ?? 30_000, startupTimeoutMs: options.startupTimeoutMs });
  }

  /** Resolves when the thread running now has ended (idle, closed or crashed); at once when none runs. */
  async ended(): Promise<void> {
    const worker = this.current;
    if (worker) await new Promise<void>((resolve) => worker.once('exit', () => resolve()));
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
  render(job: PdfJob): Promise<Uint8Array> {
    return this.exclusive(async (worker, id) => new Uint8Array((await this.request(worker, { type: 'render', id, job }, 'rendered')).pdf));
  }

  protected override spawn(): Worker {
    try {
      return startWorker(this.options.source ?? workerSourceFor(__dirname, 'pdf-worker'));
    } catch (err) {
      throw new PdfThreadError(`the PDF thread could not start: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  protected override threadError(message: string): Error {
    return new PdfThreadError(message);
  }

  /** The render's own error, as the main thread would have thrown it (a font error keeps its class). */
  protected override revived(error: ThreadErrorData): Error {
    return error.name === 'ReportFontError' ? new ReportFontError(error.message) : super.revived(error);
  }
}

/** The process's PDF thread (the opinion report and the receipts share it: one render at a time). */
export const processPdfThread = new PdfThread();
