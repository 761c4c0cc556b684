/**
 * Messages between {@link DicomWorkerPool} and the worker thread (`dicom-worker.ts`). Plain data only
 * (structured clone).
 * @packageDocumentation
 */
import type { DicomParseResult } from './dicom-header';
import type { HashedDicomFile } from './dicom-file-hash';

export type DicomWorkerRequest =
  | { readonly id: number; readonly op: 'parse-path'; readonly path: string; readonly headBytes?: number }
  | { readonly id: number; readonly op: 'parse-bytes'; readonly bytes: Uint8Array }
  | { readonly id: number; readonly op: 'hash-parse-path'; readonly path: string; readonly headBytes?: number };

export type DicomWorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'parsed'; readonly id: number; readonly result: DicomParseResult }
  | { readonly type: 'hashed'; readonly id: number; readonly file: HashedDicomFile | { readonly error: string } };
