/**
 * {@link inspectPdf} off the ingest thread, with limits: a PDF built to exhaust its reader (a
 * flate bomb in an object stream, a maze of objects) can neither stall the ingest queue nor take the
 * process down with it.
 *
 * Each inspection runs in a fresh `node:worker_threads` Worker (PDFs are few; a thread costs ~30 ms
 * to start) with:
 * - a V8 heap cap (`resourceLimits.maxOldGenerationSizeMb`): pdf-lib's objects live there;
 * - a cap on the bytes any one stream decodes to (`pdf-inspect-worker.ts`): decoded streams are typed
 *   arrays, outside the V8 heap, which the heap cap does not bound (a 1 MB PDF inflates to 1 GB);
 * - a time limit, after which the thread is terminated (which also stops a busy loop).
 *
 * Exceeding a limit is a verdict on the file (`limit`: kept and flagged by ingest). A thread that fails
 * for any other reason (did not start, crashed, exited) is no verdict (`worker-failed`: ingest leaves
 * the row `received` and retries the job). Nothing here rejects.
 *
 * Worker script: the compiled `pdf-inspect-worker.js` next to this module, or its Jest bootstrap
 * (`src/util/worker-source.ts`), as for the DICOM worker pool.
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html#new-workerfilename-options
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import type { PdfInspection } from './pdf-document';

/**
 * Time limit of one inspection (from the thread saying it is ready to its answer). pdf-lib reads an
 * ordinary record of a few hundred pages in well under a second; the flate-bomb the audit found took
 * 12.6 s of CPU. 20 s leaves slow machines ample room for genuine files while bounding how long one
 * file can hold the ingest queue, which runs one job at a time.
 */
export const PDF_INSPECT_TIMEOUT_MS = 20_000;
/** V8 old-generation cap of the inspection thread (MB): room for pdf-lib's objects of a large record. */
export const PDF_INSPECT_MAX_OLD_GENERATION_MB = 256;
/**
 * Most bytes any one stream may decode to during inspection. Inspection decodes only object and
 * cross-reference streams (small: object dictionaries and offsets); 64 MB is far above any genuine one
 * and bounds the memory outside the V8 heap.
 */
export const PDF_INSPECT_MAX_DECODED_STREAM_BYTES = 64 * 1024 * 1024;
/** Start-up limit of the thread (the Jest bootstrap transpiles on load and is slow). */
const STARTUP_TIMEOUT_MS = 30_000;

/** Limits of {@link inspectPdfInWorker}; every field has a default. */
export interface PdfInspectOptions {
  /** Time limit of the inspection (ms). Default {@link PDF_INSPECT_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** V8 heap cap of the thread (MB). Default {@link PDF_INSPECT_MAX_OLD_GENERATION_MB}. */
  readonly maxOldGenerationSizeMb?: number;
  /** Cap on one decoded stream (bytes). Default {@link PDF_INSPECT_MAX_DECODED_STREAM_BYTES}. */
  readonly maxDecodedStreamBytes?: number;
  /** Limit for the thread to start (ms). Default 30 s. */
  readonly startupTimeoutMs?: number;
  /** Override the worker code (tests; unusual layouts). Default: {@link defaultPdfWorkerSource}. */
  readonly source?: WorkerSource;
}

/** What {@link inspectPdfInWorker} gave. */
export type PdfWorkerOutcome =
  | { readonly status: 'inspected'; readonly pdf: PdfInspection }
  /** The file exceeded a limit: a verdict on the file. `reason` says which (log-safe, no content). */
  | { readonly status: 'limit'; readonly reason: string }
  /** The machine failed, not the file: no verdict. */
  | { readonly status: 'worker-failed'; readonly reason: string };

/** Request to the worker thread (structured clone; `bytes` transferred). */
export interface PdfWorkerRequest {
  readonly bytes: Uint8Array;
  readonly maxDecodedStreamBytes: number;
}

/** Replies of the worker thread. */
export type PdfWorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'inspected'; readonly pdf: PdfInspection }
  | { readonly type: 'limit'; readonly reason: string };

/** The worker script for this build: compiled JS next to this file, else the Jest bootstrap. */
export function defaultPdfWorkerSource(): WorkerSource {
  return workerSourceFor(__dirname, 'pdf-inspect-worker');
}

/** The `flagged` reason of a PDF that exceeded a limit (`limit` is {@link PdfWorkerOutcome}'s reason). */
export function pdfLimitReason(limit: string): string {
  return `PDF could not be inspected within the limits (${limit}); kept as received`;
}

/**
 * Inspects a PDF ({@link inspectPdf}) in a fresh worker thread with a heap cap, a decoded-stream cap
 * and a time limit, then ends the thread. The bytes are copied (the caller's buffer is untouched).
 */
export function inspectPdfInWorker(bytes: Uint8Array, options: PdfInspectOptions = {}): Promise<PdfWorkerOutcome> {
  const timeoutMs = options.timeoutMs ?? PDF_INSPECT_TIMEOUT_MS;
  const heapMb = options.maxOldGenerationSizeMb ?? PDF_INSPECT_MAX_OLD_GENERATION_MB;
  let source: WorkerSource;
  let worker: Worker;
  try {
    source = options.source ?? defaultPdfWorkerSource();
    worker = new Worker('file' in source ? source.file : source.eval, {
      eval: 'eval' in source,
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
      stdout: true,
      stderr: true,
    });
  } catch (err) {
    return Promise.resolve({ status: 'worker-failed', reason: `worker not started: ${err instanceof Error ? err.message : String(err)}` });
  }
  // pdf-lib reports recoverable parse problems with console.log: dropped (stdout/stderr piped, not read).
  worker.stdout.resume();
  worker.stderr.resume();
  return new Promise<PdfWorkerOutcome>((resolve) => {
    let ready = false;
    let settled = false;
    let timer = setTimeout(() => settle({ status: 'worker-failed', reason: 'worker did not start in time' }), options.startupTimeoutMs ?? STARTUP_TIMEOUT_MS);
    const settle = (outcome: PdfWorkerOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    worker.on('message', (reply: PdfWorkerReply) => {
      if (reply.type === 'ready') {
        ready = true;
        clearTimeout(timer);
        timer = setTimeout(() => settle({ status: 'limit', reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
      } else if (reply.type === 'inspected') settle({ status: 'inspected', pdf: reply.pdf });
      else settle({ status: 'limit', reason: reply.reason });
    });
    worker.on('error', (err: Error & { code?: string }) => {
      // Out of memory while reading the file is the file's doing; before it (start-up), the machine's.
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY' && ready) settle({ status: 'limit', reason: `out of memory (heap limit ${heapMb} MB)` });
      else settle({ status: 'worker-failed', reason: `worker crashed: ${err.message}` });
    });
    worker.on('exit', (code) => settle({ status: 'worker-failed', reason: `worker exited (code ${code})` }));
    // A fresh copy: structured clone of a view would copy its whole backing buffer (e.g. Buffer's pool).
    const copy = new Uint8Array(bytes);
    const request: PdfWorkerRequest = { bytes: copy, maxDecodedStreamBytes: options.maxDecodedStreamBytes ?? PDF_INSPECT_MAX_DECODED_STREAM_BYTES };
    worker.postMessage(request, [copy.buffer]);
  });
}
