/**
 * Receives a `multipart/form-data` upload by streaming each file part straight into the blob store
 * (SHA-256 and SHA-1 computed on the way, nothing buffered whole, busboy for the parsing), with the
 * limits checked while bytes arrive: per file (`MAX_UPLOAD_FILE_BYTES`) and per case
 * (`MAX_UPLOAD_CASE_BYTES`, counting what the case already holds).
 *
 * All or nothing: files are staged as temporary blobs and only {@link StagedUpload.commit}ted by the
 * caller once every part was accepted and the upload may be recorded (inside the transaction that
 * records it, after its checks); a refused request leaves nothing behind. A refusal (413 too
 * large, 415 not a PDF/DICOM/zip, 400 empty or broken) names the file; a file our disk could not take
 * (full or failing: ENOSPC, EIO), while streamed or committed, is a 503 to try again later, with nothing
 * kept. The rest of a refused request is read and discarded (so the client gets the answer rather than
 * a reset connection), up to {@link DRAIN_LIMIT_BYTES}; past that the connection is closed.
 *
 * File kinds are judged by content (`sniff.ts`), never by name or declared type. A part that carries a
 * file without a filename (which busboy hands over as a form field, cut at 4 KB) is refused with 400
 * naming the part: it cannot be stored as sent, and the family must not believe it was uploaded.
 * @see https://www.rfc-editor.org/rfc/rfc7578 (multipart/form-data)
 * @packageDocumentation
 */
import type { Request } from 'express';
import busboy from 'busboy';
import type { Readable } from 'node:stream';
import type { BlobStore, BlobWriter, PlacedBlob } from '../blobs/blob-store';
import { HttpProblem } from '../http/problem';
import { forEachLimited } from '../util/for-each-limited';
import { storableFileName } from '../util/storable-text';
import { SNIFF_BYTES, sniffFileKind, type FileKind } from './sniff';

/** How much of a refused request is still read (and discarded) before the connection is closed. */
export const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Files moved into the blob store at once when an upload commits (a rename each, and the flushes of
 * its folder): one after another, 170 files took 109–161 ms of the upload's ~280, the case row held
 * meanwhile (bench:dicom's service rows). A failure stops the ones not started; those placed are
 * discarded by the caller as before (`placed`).
 */
const COMMIT_CONCURRENCY = 16;

/** Limits of one request. */
export interface ReceiveLimits {
  readonly maxFileBytes: number;
  readonly maxCaseBytes: number;
  /** Bytes the case already holds (its earlier uploads). */
  readonly caseBytesBefore: number;
  /** Most files in one request. */
  readonly maxFiles: number;
}

/** One accepted file, staged in the blob store's temp area. */
export interface StagedFile {
  /** The multipart field the file came in. */
  readonly field: string;
  /** The file name as sent (base name only; may be PHI: never log it). */
  readonly name: string;
  readonly contentType: string;
  readonly kind: Exclude<FileKind, 'unknown'>;
  readonly size: number;
}

/** The accepted files of a request, to commit into the blob store or abort. */
export interface StagedUpload {
  readonly files: readonly StagedFile[];
  /** SHA-256 (hex), SHA-1 (base64) and size of each staged file, in `files` order, before anything is committed. */
  digests(): StagedDigest[];
  /**
   * Moves every staged file into the blob store. One our disk cannot move (full, failing) is a 503:
   * the files not moved yet are removed, those moved already are in {@link placed}.
   */
  commit(): Promise<void>;
  /** The files {@link commit} moved into the store so far: for `discardUnrecordedBlobs` when they are not recorded after all. */
  placed(): readonly PlacedBlob[];
  /** Removes the staged files not committed. */
  abort(): void;
}

/** The digests of a staged file. */
export interface StagedDigest {
  readonly sha256: string;
  readonly sha1Base64: string;
  readonly size: number;
}

interface Part {
  readonly field: string;
  readonly name: string;
  readonly contentType: string;
  readonly writer: BlobWriter;
  head: Buffer[];
  headBytes: number;
  size: number;
  /** Set once the writer was ended (every pending write flushed). */
  closed: Promise<void> | undefined;
}

/** Ends a part's writer once; resolves when its pending writes are flushed (or it failed). */
function closePart(part: Part): Promise<void> {
  part.closed ??= new Promise<void>((resolve) => {
    part.writer.once('error', () => resolve());
    part.writer.end(() => resolve());
  });
  return part.closed;
}

const KIB = 1024;
/** `1.5 MB`-style size for messages. */
export function humanBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= KIB && unit < units.length - 1) {
    value /= KIB;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit] ?? ''}`;
}

function fileProblem(status: number, title: string, index: number, field: string, detail: string): HttpProblem {
  return new HttpProblem(status, title, detail, [{ field, pointer: `#/files/${index}`, detail }]);
}

/**
 * A file that could not be written, flushed or moved into place (the disk full or failing, ENOSPC, EIO):
 * our fault, and passing — 503, never a refusal of the file.
 */
function storeProblem(name: string): HttpProblem {
  return new HttpProblem(503, 'Service Unavailable', `File "${name}" could not be stored right now; please try again later.`);
}

/** Most characters (Unicode code points) of a file name as stored. */
export const MAX_FILE_NAME_CHARS = 255;
/** Longest extension (dot included) kept when a long name is shortened. */
const MAX_KEPT_EXTENSION_CHARS = 16;

/**
 * A clean base name: no path, no C0 control characters, at most {@link MAX_FILE_NAME_CHARS}
 * characters, and honest — a bidi override or isolate, or a C1 control, shows as U+FFFD
 * ({@link storableFileName}), so neither the rows nor the answers (which quote the name) show it
 * reordered. A longer name is cut between whole characters (never inside a surrogate pair, which
 * would leave a U+FFFD) and keeps its extension (`….pdf`), so the family still recognises the file.
 */
export function cleanFileName(name: string | undefined, index: number): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const clean = shortenFileName(storableFileName(base.replace(/[\u0000-\u001f\u007f]/g, '')).trim());
  return clean === '' ? `file-${index + 1}` : clean;
}

/** `name` cut to {@link MAX_FILE_NAME_CHARS} code points, its extension kept when it has a short one. */
function shortenFileName(name: string): string {
  const chars = Array.from(name);
  if (chars.length <= MAX_FILE_NAME_CHARS) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? Array.from(name.slice(dot)) : [];
  const kept = extension.length <= MAX_KEPT_EXTENSION_CHARS ? extension : [];
  return chars.slice(0, MAX_FILE_NAME_CHARS - kept.length).join('').trimEnd() + kept.join('');
}

/**
 * Whether a part without a filename carries a file rather than a form field: it declares a media type
 * other than text/plain, is longer than a form field may be (4 KB), or starts like a PDF, a DICOM file
 * or a zip (`value` holds its bytes as latin1).
 */
function carriesFile(value: string, info: busboy.FieldInfo): boolean {
  return info.mimeType !== 'text/plain' || info.valueTruncated || sniffFileKind(Buffer.from(value, 'latin1')) !== 'unknown';
}

/**
 * Streams the files of a multipart request into staged blobs. Throws an {@link HttpProblem} naming the
 * file when a limit is passed or a file is not acceptable (staged files are then removed).
 */
export async function receiveMultipart(req: Request, store: BlobStore, limits: ReceiveLimits): Promise<StagedUpload> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    const detail = 'Send the files as multipart/form-data (one part per file).';
    throw new HttpProblem(415, 'Unsupported Media Type', detail, [{ field: 'content-type', pointer: '#/headers/content-type', detail }]);
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      // Form-field values byte for byte (latin1), so a file sent without a filename can be recognised.
      defCharset: 'latin1',
      limits: { fileSize: limits.maxFileBytes, files: limits.maxFiles, fields: 20, fieldSize: 4 * KIB, parts: limits.maxFiles + 20 },
    });
  } catch {
    const detail = 'The multipart/form-data Content-Type has no usable boundary.';
    throw new HttpProblem(400, 'Bad Request', detail, [{ field: 'content-type', pointer: '#/headers/content-type', detail }]);
  }

  const parts: Part[] = [];
  let failure: HttpProblem | undefined;
  let total = 0;
  let requestBytes = 0;
  let bytesAtFailure = 0;
  const fail = (problem: HttpProblem): void => {
    if (failure) return;
    failure = problem;
    bytesAtFailure = requestBytes;
  };

  const onFile = (field: string, stream: Readable, info: busboy.FileInfo): void => {
    const index = parts.length;
    const name = cleanFileName(info.filename, index);
    if (failure) {
      stream.resume();
      return;
    }
    const part: Part = { field, name, contentType: info.mimeType, writer: store.createWriter(), head: [], headBytes: 0, size: 0, closed: undefined };
    parts.push(part);
    part.writer.on('error', () => {
      fail(storeProblem(name));
      stream.resume(); // a 'drain' will not come: read on (and discard) so the request can end
    });
    stream.on('data', (chunk: Buffer) => {
      if (failure) return;
      part.size += chunk.length;
      total += chunk.length;
      if (part.headBytes < SNIFF_BYTES) {
        part.head.push(chunk);
        part.headBytes += chunk.length;
      }
      if (limits.caseBytesBefore + total > limits.maxCaseBytes) {
        fail(
          fileProblem(
            413,
            'Payload Too Large',
            index,
            field,
            `File "${name}" would take this case's uploads past their limit of ${humanBytes(limits.maxCaseBytes)} ` +
              `(${humanBytes(limits.caseBytesBefore)} already stored).`,
          ),
        );
        return;
      }
      if (!part.writer.write(chunk)) {
        stream.pause();
        part.writer.once('drain', () => stream.resume());
      }
    });
    stream.on('limit', () => {
      fail(fileProblem(413, 'Payload Too Large', index, field, `File "${name}" is larger than the limit of ${humanBytes(limits.maxFileBytes)} per file.`));
    });
    stream.on('error', () => {
      fail(new HttpProblem(400, 'Bad Request', `File "${name}" arrived broken (the multipart body is malformed).`));
      void closePart(part);
    });
    stream.on('end', () => {
      if (!failure && part.size === 0) fail(fileProblem(400, 'Bad Request', index, field, `File "${name}" is empty.`));
      if (!failure && sniffFileKind(Buffer.concat(part.head)) === 'unknown') {
        fail(
          fileProblem(415, 'Unsupported Media Type', index, field, `File "${name}" is not a PDF, a DICOM file or a zip archive (judged by its content, not its name).`),
        );
      }
      void closePart(part);
    });
  };

  // busboy takes a part without a filename (unless application/octet-stream) for a form field: its value
  // decoded as text and cut at 4 KB. A file in it cannot be stored as sent, and ignoring it would let the
  // family believe it was uploaded: the request is refused naming the part. Other form fields are ignored.
  const onField = (field: string | undefined, value: string, info: busboy.FieldInfo): void => {
    if (failure || !carriesFile(value, info)) return;
    const part = field || '(unnamed part)';
    const detail =
      `Part "${part}" carries a file but no filename: send each file with one ` +
      `(Content-Disposition: form-data; name="${part}"; filename="…"). Nothing of this upload was kept.`;
    fail(new HttpProblem(400, 'Bad Request', detail, [{ field: part, pointer: `#/files/${parts.length}`, detail }]));
  };

  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve();
    };
    parser.on('file', onFile);
    parser.on('field', onField);
    // Past the limit busboy skips form fields unseen: one of them could be a file without a filename.
    parser.on('fieldsLimit', () => fail(new HttpProblem(413, 'Payload Too Large', 'The upload has too many parts that are not files.')));
    parser.on('filesLimit', () => fail(new HttpProblem(413, 'Payload Too Large', `An upload may carry at most ${limits.maxFiles} files.`)));
    parser.on('partsLimit', () => fail(new HttpProblem(413, 'Payload Too Large', 'The upload has too many parts.')));
    parser.on('error', () => {
      fail(new HttpProblem(400, 'Bad Request', 'The multipart/form-data body is malformed.'));
      finish();
    });
    parser.on('close', finish);
    req.on('data', (chunk: Buffer) => {
      requestBytes += chunk.length;
      if (failure && requestBytes - bytesAtFailure > DRAIN_LIMIT_BYTES) {
        // Stop reading a refused request that keeps coming: answer, then close the connection.
        req.unpipe(parser);
        req.pause();
        req.res?.setHeader('Connection', 'close');
        finish();
      }
    });
    req.on('close', () => {
      if (!req.complete) {
        fail(new HttpProblem(400, 'Bad Request', 'The upload was interrupted before the end of the request.'));
        finish();
      }
    });
    req.pipe(parser);
  });
  // Every writer ends (also those of parts cut off by an abandoned or interrupted request) before
  // staged files are aborted or committed.
  await Promise.all(parts.map(closePart));

  const placed: PlacedBlob[] = [];
  const abort = (): void => {
    for (const p of parts) p.writer.abort();
  };
  if (!failure && parts.length === 0) {
    const detail = 'The upload holds no file: send at least one file part.';
    failure = new HttpProblem(400, 'Bad Request', detail, [{ field: 'files', pointer: '#/files', detail }]);
  }
  if (failure) {
    abort();
    throw failure;
  }
  return {
    files: parts.map((p) => ({
      field: p.field,
      name: p.name,
      contentType: p.contentType,
      kind: sniffFileKind(Buffer.concat(p.head)) as Exclude<FileKind, 'unknown'>,
      size: p.size,
    })),
    digests: () => parts.map((p) => ({ ...p.writer.digest(), size: p.size })),
    commit: async () => {
      await forEachLimited(parts, COMMIT_CONCURRENCY, async (p) => {
        try {
          placed.push((await p.writer.commit()).placed);
        } catch {
          // The disk (full, failing), not the file: the family may send it again. No temp file stays.
          abort();
          throw storeProblem(p.name);
        }
      });
    },
    placed: () => placed,
    abort,
  };
}
