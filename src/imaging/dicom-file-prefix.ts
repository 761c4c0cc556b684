/**
 * Parsing the header of an open DICOM file from a prefix that grows only as far as the header needs
 * ({@link prefixSteps}): the bytes read so far are kept, the next step reads on from where the last
 * ended (each byte of the file read once), and the prefix is parsed again. Encapsulated Pixel Data past
 * the prefix is checked to its end through {@link readAtFd}: 8-byte item headers read where they are
 * (PS3.5 §A.4), never the fragments. A caller that needs every byte (the SHA-256 of the upload) is shown
 * each range as it is read and goes on from {@link PrefixParse.consumed}.
 *
 * The prefix never grows past {@link MAX_HEADER_PREFIX_BYTES} (64 MiB): a header that has not ended
 * there (no Pixel Data before it: a file with no Pixel Data at all, or a very large value before it;
 * a deflated data set whose first 64 MiB do not inflate to a whole header) is `too-large`, kept but
 * not indexed. Without the cap such a file was read whole into one Buffer, outside the parsing
 * thread's heap limit (a 700 MB file: 1 GB of RSS, 7.7 s).
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_A.4.html (PS3.5 §A.4 encapsulation)
 * @packageDocumentation
 */
import fs from 'node:fs';
import { type DicomParseResult, parseDicomHeader, parseDicomPrefix, type ReadAt } from './dicom-header';
import { prefixSteps } from './dicom-prefix-steps';

/** Bytes read first. */
export const DEFAULT_HEAD_BYTES = 64 * 1024;

/**
 * Most bytes of a file read to find the end of its header. Image headers end in the first 64 KiB, the
 * largest real ones (private CSA headers, icon images, overlays, enhanced multi-frame functional
 * groups) in a few MiB; 64 MiB bounds the memory one parse holds outside the thread's V8 heap.
 */
export const MAX_HEADER_PREFIX_BYTES = 64 * 1024 * 1024;

export interface DicomFileOptions {
  /** Size of the first read (default {@link DEFAULT_HEAD_BYTES}); each next one is 16 × larger. */
  readonly headBytes?: number;
  /** Most bytes read for the header (default {@link MAX_HEADER_PREFIX_BYTES}); past it, `too-large`. */
  readonly maxHeaderBytes?: number;
}

/** What {@link parseFilePrefix} found, and how far it read. */
export interface PrefixParse {
  readonly result: DicomParseResult;
  /** Bytes read from the start of the file, in order, each once (item headers read by position aside). */
  readonly consumed: number;
}

/** Largest window {@link readAtFd} reads item headers through. */
const READ_AT_WINDOW_BYTES = 1024 * 1024;

/**
 * Reads `length` bytes at `offset` of an open file, fewer at its end, through one reused window of at
 * most {@link READ_AT_WINDOW_BYTES}, grown only as far as the reads need (a file with one small
 * read past its prefix does not allocate the whole maximum). Walking encapsulated Pixel Data asks for
 * one 8-byte item header after another: a million empty fragments must cost a few reads of 1 MiB, not
 * a million `readSync` calls and buffers. The window adapts: a read far past the last window (the next
 * header behind a large fragment) reads only what was asked, so big fragments are still skipped, not
 * read; a read just past it (headers close together) reads a window 16 × larger, up to the maximum.
 * The bytes returned are valid until the next call.
 */
export function readAtFd(fd: number): ReadAt {
  let window: Buffer | undefined;
  let windowStart = 0;
  let windowEnd = 0;
  let windowLength = 0;
  return (offset, length) => {
    if (length > READ_AT_WINDOW_BYTES) {
      const chunk = Buffer.allocUnsafe(length);
      return chunk.subarray(0, fill(fd, chunk, 0, offset));
    }
    if (window === undefined || offset < windowStart || offset + length > windowEnd) {
      const near = windowLength > 0 && offset >= windowEnd && offset - windowEnd <= 15 * windowLength;
      windowLength = Math.max(length, near ? Math.min(READ_AT_WINDOW_BYTES, windowLength * 16) : length);
      if (window === undefined || window.length < windowLength) window = Buffer.allocUnsafe(windowLength);
      windowStart = offset;
      windowEnd = offset + fill(fd, window.subarray(0, windowLength), 0, offset);
    }
    const from = offset - windowStart;
    return window.subarray(from, Math.min(from + length, windowEnd - windowStart));
  };
}

/**
 * Reads `fd` from its start into a prefix growing by {@link prefixSteps} until the header it holds is
 * parsed (or the file ends, or the prefix reaches `maxHeaderBytes`: `too-large`), telling `onRead` of
 * each new range in file order.
 * @param size the file's size as stat gives it (a file found shorter is parsed as what was read)
 * @throws what `fs.readSync` throws
 */
export function parseFilePrefix(
  fd: number,
  size: number,
  headBytes: number,
  onRead?: (bytes: Uint8Array) => void,
  maxHeaderBytes: number = MAX_HEADER_PREFIX_BYTES,
): PrefixParse {
  const readAt = readAtFd(fd);
  const cap = Math.max(1, Math.floor(maxHeaderBytes));
  let held: Buffer = Buffer.alloc(0);
  for (const want of prefixSteps(Math.min(size, cap), Math.min(headBytes, cap))) {
    const from = held.byteLength;
    let next: Buffer;
    try {
      next = Buffer.allocUnsafe(want);
    } catch (err) {
      if (err instanceof RangeError) return { result: tooLongToHold(from, size), consumed: from };
      throw err;
    }
    held.copy(next, 0, 0, from);
    const read = fill(fd, next, from, from);
    held = next.subarray(0, read);
    onRead?.(held.subarray(from));
    const result = parseDicomPrefix(held, read < want ? read : size, readAt);
    if (result.ok || result.code !== 'needs-more') return { result, consumed: read };
    if (want >= cap) return { result: headerPastCap(cap, size, result.reason), consumed: read };
  }
  // Unreachable in practice: a prefix that is the whole file is never `needs-more`.
  return { result: parseDicomHeader(held), consumed: held.byteLength };
}

/** Fills `buffer` from byte `start` with the file from `position`; returns where the filled part ends. */
function fill(fd: number, buffer: Buffer, start: number, position: number): number {
  let end = start;
  while (end < buffer.byteLength) {
    const n = fs.readSync(fd, buffer, end, buffer.byteLength - end, position + (end - start));
    if (n === 0) break;
    end += n;
  }
  return end;
}

/** A header that had not ended within the first `cap` bytes of a larger file (`why`: the prefix parse's `needs-more` reason). */
function headerPastCap(cap: number, size: number, why: string): DicomParseResult {
  const what =
    why === 'deflated data set'
      ? 'the deflated data set is longer'
      : 'no Pixel Data (7FE0,0010) before that: the file has none, or a value of that size comes before it';
  return {
    ok: false,
    code: 'too-large',
    reason: `too large to index: the DICOM header did not end within the first ${humanMiB(cap)} of the file (${size} bytes; ${what}); kept but not indexed`,
  };
}

function humanMiB(bytes: number): string {
  return bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** A header that never ended in a file larger than one Buffer can be (Node: `buffer.constants.MAX_LENGTH`). */
function tooLongToHold(read: number, size: number): DicomParseResult {
  return {
    ok: false,
    code: 'too-large',
    reason: `too large to read: the DICOM header did not end within the first ${read} bytes, and the file (${size} bytes) is larger than one buffer can hold; not indexed`,
  };
}
