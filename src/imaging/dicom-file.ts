/**
 * Parsing a DICOM file from disk, reading as little as possible: first the head of the file (64 KiB by
 * default, where nearly every header ends), then a 16× larger head, then the whole file, each step only
 * when the previous one ended before the header did (see {@link parseDicomPrefix}). On large images this
 * reads a small fraction of the bytes; a file whose header is longer still parses. Encapsulated Pixel
 * Data past the head is checked for truncation by reading its 8-byte item headers where they are
 * ({@link ReadAt}), never the fragments themselves.
 *
 * @packageDocumentation
 */
import { hash } from 'node:crypto';
import fs from 'node:fs';
import { type DicomParseResult, parseDicomHeader, parseDicomPrefix, type ReadAt } from './dicom-header';

/** Bytes read first. */
export const DEFAULT_HEAD_BYTES = 64 * 1024;

export interface DicomFileOptions {
  /** Size of the first read (default {@link DEFAULT_HEAD_BYTES}). */
  readonly headBytes?: number;
}

/** Reads the head of `filePath` (synchronously: meant for a worker thread) and parses it. Never throws. */
export function parseDicomFileSync(filePath: string, options: DicomFileOptions = {}): DicomParseResult {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    return { ok: false, code: 'io', reason: `cannot open file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  try {
    const size = fs.fstatSync(fd).size;
    const readAt: ReadAt = (offset, length) => {
      const chunk = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, chunk, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return chunk.subarray(0, got);
    };
    let read = 0;
    let buffer = Buffer.alloc(0);
    for (const want of steps(size, options.headBytes ?? DEFAULT_HEAD_BYTES)) {
      const next = Buffer.allocUnsafe(want);
      buffer.copy(next, 0, 0, read);
      while (read < want) {
        const n = fs.readSync(fd, next, read, want - read, read);
        if (n === 0) break;
        read += n;
      }
      buffer = next.subarray(0, read);
      const result = parseDicomPrefix(buffer, read < want ? read : size, readAt);
      if (result.ok || result.code !== 'needs-more') return result;
    }
    return parseDicomHeader(buffer);
  } catch (err) {
    return { ok: false, code: 'io', reason: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  } finally {
    fs.closeSync(fd);
  }
}

/** The growing read sizes: head, 16 × head, whole file (each at most the file size). */
function steps(size: number, head: number): number[] {
  const out: number[] = [];
  for (const s of [head, head * 16, size]) {
    const n = Math.min(s, size);
    if (out.length === 0 || n > (out[out.length - 1] ?? 0)) out.push(n);
  }
  return out.length > 0 ? out : [0];
}

/**
 * Parses a file held whole in memory by the same steps as {@link parseDicomFileSync} (the head first:
 * cheap for a deflated data set, whose head inflates in a fraction of the time).
 */
export function parseDicomBuffer(bytes: Uint8Array, options: DicomFileOptions = {}): DicomParseResult {
  const readAt: ReadAt = (offset, length) => bytes.subarray(offset, offset + length);
  for (const want of steps(bytes.byteLength, options.headBytes ?? DEFAULT_HEAD_BYTES)) {
    const result = parseDicomPrefix(bytes.subarray(0, want), bytes.byteLength, readAt);
    if (result.ok || result.code !== 'needs-more') return result;
  }
  return parseDicomHeader(bytes);
}

/** What {@link hashAndParseDicomFileSync} returns: the blob key and size of the file, and its header. */
export interface HashedDicomFile {
  readonly sha256: string;
  readonly size: number;
  readonly result: DicomParseResult;
}

/** Reads a whole file once, hashes it (SHA-256, hex) and parses its header. Never throws. */
export function hashAndParseDicomFileSync(filePath: string, options: DicomFileOptions = {}): HashedDicomFile | { readonly error: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(filePath);
  } catch (err) {
    return { error: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  return { sha256: hash('sha256', bytes, 'hex'), size: bytes.byteLength, result: parseDicomBuffer(bytes, options) };
}
