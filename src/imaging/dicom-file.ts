/**
 * Parsing a DICOM file's header, from disk or from memory, reading as little as possible: first the
 * head of the file (64 KiB by default, where nearly every header ends), then a prefix 16× larger, and so
 * on to the whole file, each step only when the previous one ended before the header did (see
 * {@link parseDicomPrefix} and {@link prefixSteps}). On large images this reads a small fraction of the
 * bytes — a 2 MiB header in a 1 GB multi-frame file costs a 16 MiB read — and a file whose header has no
 * end before the file's still parses. Encapsulated Pixel Data past the prefix is checked for truncation
 * by reading its 8-byte item headers where they are ({@link ReadAt}), never the fragments themselves.
 * Hashing while reading is `dicom-file-hash.ts`.
 *
 * @packageDocumentation
 */
import fs from 'node:fs';
import { type DicomParseResult, parseDicomHeader, parseDicomPrefix, type ReadAt } from './dicom-header';
import { DEFAULT_HEAD_BYTES, type DicomFileOptions, parseFilePrefix } from './dicom-file-prefix';
import { prefixSteps } from './dicom-prefix-steps';

export { DEFAULT_HEAD_BYTES, type DicomFileOptions } from './dicom-file-prefix';

/** Reads the head of `filePath` (synchronously: meant for a worker thread) and parses it. Never throws. */
export function parseDicomFileSync(filePath: string, options: DicomFileOptions = {}): DicomParseResult {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    return { ok: false, code: 'io', reason: `cannot open file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  try {
    return parseFilePrefix(fd, fs.fstatSync(fd).size, options.headBytes ?? DEFAULT_HEAD_BYTES, undefined, options.maxHeaderBytes).result;
  } catch (err) {
    return { ok: false, code: 'io', reason: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Parses a file held whole in memory by the same steps as {@link parseDicomFileSync} (the head first:
 * cheap for a deflated data set, whose head inflates in a fraction of the time).
 */
export function parseDicomBuffer(bytes: Uint8Array, options: DicomFileOptions = {}): DicomParseResult {
  const readAt: ReadAt = (offset, length) => bytes.subarray(offset, offset + length);
  for (const want of prefixSteps(bytes.byteLength, options.headBytes ?? DEFAULT_HEAD_BYTES)) {
    const result = parseDicomPrefix(bytes.subarray(0, want), bytes.byteLength, readAt);
    if (result.ok || result.code !== 'needs-more') return result;
  }
  return parseDicomHeader(bytes);
}
