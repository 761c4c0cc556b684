/**
 * Worker-thread entry of the DICOM header parser: parses what it is sent, one request at a time, and
 * answers. Started by {@link DicomWorkerPool}; a file that stalls it gets the thread terminated.
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { parseDicomFileSync } from './dicom-file';
import { hashAndParseDicomFileSync } from './dicom-file-hash';
import { parseDicomHeader } from './dicom-header';
import type { DicomWorkerReply, DicomWorkerRequest } from './dicom-worker-protocol';

const port = parentPort;
if (!port) throw new Error('dicom-worker must run in a worker thread');

function handle(request: DicomWorkerRequest): DicomWorkerReply {
  switch (request.op) {
    case 'parse-path':
      return { type: 'parsed', id: request.id, result: parseDicomFileSync(request.path, headOption(request.headBytes)) };
    case 'parse-bytes':
      return { type: 'parsed', id: request.id, result: parseDicomHeader(request.bytes) };
    case 'hash-parse-path':
      return { type: 'hashed', id: request.id, file: hashAndParseDicomFileSync(request.path, headOption(request.headBytes)) };
  }
}

function headOption(headBytes: number | undefined): { headBytes?: number } {
  return headBytes === undefined ? {} : { headBytes };
}

port.on('message', (request: DicomWorkerRequest) => port.postMessage(handle(request)));
port.postMessage({ type: 'ready' } satisfies DicomWorkerReply);
