/**
 * The SHA-256 of an uploaded DICOM file (its blob key) and its header, in one pass over the file that
 * never holds the file: the file is read in order, every byte once, into the hash; the bytes the header
 * parse needs are kept as they go by (a prefix growing ×16, {@link parseFilePrefix}), and once the
 * header is parsed the rest is hashed {@link HASH_CHUNK_BYTES} at a time through one reused buffer. A
 * 1 GB multi-frame image with a 2 MiB header holds 16 MiB + 4 MiB at most; before, all of it (and a file
 * over 2 GiB could not be read at all). A file whose header runs to its end (no Pixel Data) is held
 * whole up to `MAX_HEADER_PREFIX_BYTES` (64 MiB), as parsing it needs; past that it is `too-large`.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { DicomParseResult } from './dicom-header';
import { DEFAULT_HEAD_BYTES, type DicomFileOptions, parseFilePrefix } from './dicom-file-prefix';

/** Size of the reads that hash the file past its header. */
export const HASH_CHUNK_BYTES = 4 * 1024 * 1024;

/** What {@link hashAndParseDicomFileSync} returns: the blob key and size of the file, and its header. */
export interface HashedDicomFile {
  readonly sha256: string;
  readonly size: number;
  readonly result: DicomParseResult;
}

/**
 * Reads a file once (synchronously: meant for a worker thread), hashes it (SHA-256, hex) and parses its
 * header. Never throws; `{ error }` when the file cannot be read, or changed size while it was.
 */
export function hashAndParseDicomFileSync(filePath: string, options: DicomFileOptions = {}): HashedDicomFile | { readonly error: string } {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    return { error: `cannot read file: ${errorCode(err)}` };
  }
  try {
    const size = fs.fstatSync(fd).size;
    const sha256 = createHash('sha256');
    const { result, consumed } = parseFilePrefix(fd, size, options.headBytes ?? DEFAULT_HEAD_BYTES, (bytes) => sha256.update(bytes), options.maxHeaderBytes);
    const total = hashRest(fd, consumed, size, (bytes) => sha256.update(bytes));
    if (total !== size) return { error: `cannot read file: it changed size while it was read (${size} bytes when opened, ${total} read)` };
    return { sha256: sha256.digest('hex'), size, result };
  } catch (err) {
    return { error: `cannot read file: ${errorCode(err)}` };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the file from `from` to its end through one reused buffer; returns the offset of the end. */
function hashRest(fd: number, from: number, size: number, update: (bytes: Uint8Array) => void): number {
  const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(HASH_CHUNK_BYTES, size - from)));
  let at = from;
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, chunk.byteLength, at);
    if (n === 0) return at;
    update(chunk.subarray(0, n));
    at += n;
  }
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
