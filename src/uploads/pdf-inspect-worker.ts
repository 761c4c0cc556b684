/**
 * Worker-thread entry of {@link inspectPdfInWorker}: inspects the one PDF it is sent and answers.
 *
 * pdf-lib decodes streams (object streams, here) into typed arrays that grow by doubling, outside the
 * V8 heap that the thread's `resourceLimits` cap: a 1 MB flate bomb inflates to gigabytes. So the
 * growth method of pdf-lib's `DecodeStream` (the base of every filter's stream) is wrapped in this
 * thread only: a stream that would decode past the cap throws, and the answer is `limit`, whatever
 * pdf-lib made of the rest of the file.
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { decodePDFRawStream, PDFContext, PDFRawStream } from 'pdf-lib';
import { inspectPdf } from './pdf-inspection';
import type { PdfWorkerReply, PdfWorkerRequest } from './pdf-inspect';

const port = parentPort;
if (!port) throw new Error('pdf-inspect-worker must run in a worker thread');

/** The part of pdf-lib's (internal) `DecodeStream` prototype that is wrapped. */
interface GrowableStream {
  ensureBuffer(this: unknown, requested: number): Uint8Array;
}

let maxDecodedBytes = Number.POSITIVE_INFINITY;
let exceeded: string | undefined;

/** The prototype that owns `ensureBuffer`, found from a stream decoded through pdf-lib's public API. */
function decodeStreamPrototype(): GrowableStream {
  const context = PDFContext.create();
  const stream = decodePDFRawStream(PDFRawStream.of(context.obj({ Filter: 'ASCIIHexDecode' }), new Uint8Array([0x3e])));
  for (let proto: unknown = Object.getPrototypeOf(stream); proto; proto = Object.getPrototypeOf(proto)) {
    if (Object.prototype.hasOwnProperty.call(proto, 'ensureBuffer')) return proto as GrowableStream;
  }
  throw new Error('pdf-lib DecodeStream.ensureBuffer not found: the decoded-stream cap cannot be enforced');
}

const proto = decodeStreamPrototype();
const ensureBuffer = proto.ensureBuffer;
proto.ensureBuffer = function (this: unknown, requested: number): Uint8Array {
  if (requested > maxDecodedBytes) {
    exceeded = `a stream decodes to more than ${Math.round(maxDecodedBytes / (1024 * 1024))} MB`;
    throw new RangeError(exceeded);
  }
  return ensureBuffer.call(this, requested);
};

port.on('message', (request: PdfWorkerRequest) => {
  maxDecodedBytes = request.maxDecodedStreamBytes;
  void inspectPdf(request.bytes).then((pdf) => {
    const reply: PdfWorkerReply = exceeded === undefined ? { type: 'inspected', pdf } : { type: 'limit', reason: exceeded };
    port.postMessage(reply);
  });
});
port.postMessage({ type: 'ready' } satisfies PdfWorkerReply);
