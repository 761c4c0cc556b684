/**
 * Worker-thread entry of PDF rendering: renders the job it is sent (`report-pdf.ts`, or
 * `receipt-pdf.ts` loaded on the first receipt) and hands the bytes back, transferred (see
 * `pdf-thread-protocol.ts`). The fonts are read and cached here, per thread (`report-fonts.ts`).
 * Started by {@link PdfThread}. Imports only what rendering needs: under Jest every module of its
 * graph is transpiled when the thread starts.
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { renderReportPdf } from './report-pdf';
import type { PdfJob, PdfThreadReply, PdfThreadRequest } from './pdf-thread-protocol';

const port = parentPort;
if (!port) throw new Error('pdf-worker must run in a worker thread');

type ReceiptPdf = typeof import('../billing/receipt-pdf');
let receiptPdf: ReceiptPdf | undefined;

/** The receipt renderer, loaded when first needed (its imports are not the report's). */
function receiptRenderer(): ReceiptPdf {
  receiptPdf ??= require('../billing/receipt-pdf') as ReceiptPdf;
  return receiptPdf;
}

async function render(job: PdfJob): Promise<Uint8Array> {
  switch (job.kind) {
    case 'report':
      return renderReportPdf(job.input, job.fonts);
    case 'receipt':
      return receiptRenderer().renderReceiptPdf(job.receipt, job.now, job.fonts);
  }
}

/** The PDF's own ArrayBuffer, exactly its bytes (pdf-lib's is; a view into a larger one is copied out). */
function ownBuffer(pdf: Uint8Array): ArrayBuffer {
  const whole = pdf.byteOffset === 0 && pdf.byteLength === pdf.buffer.byteLength ? pdf : pdf.slice();
  return whole.buffer as ArrayBuffer;
}

function failed(id: number, err: unknown): PdfThreadReply {
  const error = err instanceof Error ? err : new Error(String(err));
  return { type: 'failed', id, error: { name: error.name, message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) } };
}

port.on('message', (request: PdfThreadRequest) => {
  render(request.job).then(
    (pdf) => {
      const buffer = ownBuffer(pdf);
      port.postMessage({ type: 'rendered', id: request.id, pdf: buffer } satisfies PdfThreadReply, [buffer]);
    },
    (err: unknown) => port.postMessage(failed(request.id, err)),
  );
});
port.postMessage({ type: 'ready' } satisfies PdfThreadReply);
