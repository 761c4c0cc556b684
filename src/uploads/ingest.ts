/**
 * Ingest of one upload (queue `ingest-upload`): every file the upload route stored is looked at, and
 * what it is, or why it could not be read, is written on its row. Then the case bundle is assembled
 * again, so the upload shows up in it.
 *
 * 1. Zips (a CD export) are extracted with limits (`extractZip`: entries, inflated size, ratio; unsafe
 *    entries such as `../` paths refused one by one); each extracted file is put in the blob store and
 *    gets its own row; a refused entry gets a row with the reason; a refused archive is marked
 *    `unparsed` with the reason. A disk that is full or failing while the zip is unpacked (ENOSPC,
 *    EIO) is no verdict on the family's file: nothing extracted is kept, the zip row stays `received`
 *    and the job fails, to be retried.
 * 2. DICOM headers are parsed in a worker thread with a hard time limit (`DicomWorkerPool`), so a
 *    pathological file cannot crash or stall the worker; a malformed or truncated file, or one whose
 *    parse exceeds the time limit or exhausts the thread's heap (`timeout`, `too-large`: verdicts on
 *    the file, as for PDFs), is kept and marked `unparsed` with the reason; the rest proceeds. A
 *    failure of the machine (pool closed, thread not started, blob not readable) is no verdict: the
 *    row stays `received` and the job throws once the other files are read, to be retried. PDFs are inspected with pdf-lib in a
 *    worker thread with time and memory limits (`inspectPdfInWorker`): an encrypted one, or one that
 *    exceeds the limits, is `flagged`, a damaged one `unparsed` (all stay in the bundle as documents);
 *    a thread that fails for another reason is, like the DICOM pool's, no verdict (retried).
 *    A DICOM file whose values the reader left out for being far longer than DICOM allows
 *    (`valuesNotRead`, PS3.5 §6.2) is indexed without them and `flagged`, the reason naming them.
 *    A DICOM file with `%PDF-` in its first 1,024 bytes (its preamble: a DICOM/PDF polyglot, which PDF
 *    viewers open as a document) is also inspected as a PDF, like an uploaded PDF, and `flagged`
 *    (`polyglot`, and the active content found, in the reason and the ImagingStudy's tags).
 *    A zip entry whose name an earlier entry has, with other content, is listed as `name (2)` and
 *    `flagged` ({@link DUPLICATE_NAME_REASON}); its content is read as any other's.
 * 3. The identity in the DICOM files is checked against the case patient, per study over all the
 *    case's uploads: a study that differs is `flagged` for case-manager review, never dropped. Files
 *    of different content sharing one SOP Instance UID are all `flagged` too (both kept and listed).
 * 4. The case is assembled (trigger `upload:<uploadId>`, once).
 *
 * Idempotent: only rows still `received` are parsed, extracted rows have ids derived from the zip row
 * and entry position (inserted once), blobs are content-addressed, and the assembly runs once per
 * upload. A job that died half-way resumes where the rows say it stopped.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assembleCase, type AssembleDeps } from '../assembly/assemble';
import { hasBundleVersion } from '../assembly/bundle-repository';
import { flushFile, recordBlob, type BlobStore } from '../blobs/blob-store';
import type { UploadConfig } from '../config';
import { uuidV5 } from '../cases/fhir-ids';
import type { Intake } from '../cases/intake-schema';
import { CASE_ROW_LOCK, findCase, hasCaseEvent, insertCaseEvent } from '../db/case-repository';
import type { Database } from '../db/database';
import { storeFileAsBlob } from '../imaging/dicom-ingest';
import { valuesNotReadReason, type DicomFailureCode, type DicomHeader } from '../imaging/dicom-header';
import type { DicomWorkerPool } from '../imaging/dicom-worker-pool';
import { conflictingSopInstanceUids, reviewStudyIdentities, SOP_INSTANCE_UID_CONFLICT_REASON } from '../imaging/imaging-study';
import { logger } from '../log';
import { activeContentReason, type PdfInspection } from './pdf-document';
import { inspectPdfInWorker, pdfLimitReason, type PdfInspectOptions, type PdfWorkerOutcome } from './pdf-inspect';
import { hasPdfHeader, SNIFF_BYTES } from './sniff';
import { casePatientOf, storedHeader } from './upload-resources';
import { humanBytes } from './multipart-receiver';
import {
  caseUploadBytes,
  insertUploadFiles,
  listCaseUploadFiles,
  listUploadFiles,
  recordIdentityVerdict,
  recordParse,
  UPLOAD_FILE_STATES,
  type NewUploadFile,
  type UploadFileRow,
  type UploadFileState,
} from './upload-repository';
import { extractZip, ZipLimitError } from './zip-archive';
import { endedWithoutReport } from '../cases/lifecycle';
import { forEachLimited } from '../util/for-each-limited';

/** What ingest needs. */
export interface IngestDeps extends AssembleDeps {
  readonly db: Database;
  readonly blobs: BlobStore;
  readonly pool: DicomWorkerPool;
  /** Scratch folder for zip extraction; on the blob store's file system (files are hard-linked in). */
  readonly workDir: string;
  readonly uploads: UploadConfig;
  /** Limits of PDF inspection (`pdf-inspect.ts`); the defaults when absent. */
  readonly pdfInspect?: PdfInspectOptions;
  /** Inspects one PDF; default {@link inspectPdfInWorker} (a thread of its own, with time and memory limits). */
  readonly inspectPdf?: (bytes: Uint8Array, options?: PdfInspectOptions) => Promise<PdfWorkerOutcome>;
}

/** What one ingest run did (the job's return value: ids and counts only, no PHI). */
export interface IngestResult {
  readonly uploadId: string;
  readonly files: number;
  readonly counts: Record<UploadFileState, number>;
  /** The bundle version assembled for this upload (absent when an earlier run did it). */
  readonly version?: number;
}

/** Namespace of the ids of files extracted from an uploaded zip (random, fixed forever). */
export const EXTRACTED_FILE_NAMESPACE = '4e0c2b7a-91d3-4f6e-b8a5-7c2d9e1f3a60';
/** PDFs larger than this are kept but not opened with pdf-lib (it reads the whole file into memory). */
export const MAX_PDF_INSPECT_BYTES = 256 * 1024 * 1024;

/** How many of a zip's extracted files (or blob folders) are flushed at once: a zip may hold thousands. */
const FLUSH_CONCURRENCY = 32;

/** Ingests one upload. Safe to run again (see the module comment). */
export async function ingestUpload(deps: IngestDeps, uploadId: string): Promise<IngestResult> {
  const first = await listUploadFiles(deps.db, uploadId);
  const caseId = first[0]?.caseId;
  if (!caseId) return { uploadId, files: 0, counts: countStates([]) };
  for (const zip of first.filter((f) => f.kind === 'zip' && f.parentId === null && f.state === 'received')) await expandZip(deps, zip);
  await parseReceivedFiles(deps, uploadId);
  const record = await findCase(deps.db, caseId);
  if (record) await reviewIdentities(deps.db, caseId, record.intake as Intake);
  const files = await listUploadFiles(deps.db, uploadId);
  const counts = countStates(files);
  const trigger = `upload:${uploadId}`;
  if (await hasBundleVersion(deps.db, caseId, trigger)) return { uploadId, files: files.length, counts };
  if (!(await hasCaseEvent(deps.db, caseId, 'upload_ingested', 'uploadId', uploadId))) {
    await insertCaseEvent(deps.db, {
      caseId,
      type: 'upload_ingested',
      actorSub: 'system:ingest',
      reason: `${files.length} file(s): ${counts.parsed} read, ${counts.flagged} flagged for review, ${counts.unparsed} kept but not readable.`,
      data: { uploadId, counts },
    });
  }
  // The family withdrew (or the case was found ineligible) after the upload was taken: its files are
  // kept and read, but no case record is assembled any more for a case that ended without a report.
  if (record && endedWithoutReport(record.status)) {
    logger.info('upload ingested, not assembled: the case has ended', { caseId, uploadId, state: record.status });
    return { uploadId, files: files.length, counts };
  }
  const assembled = await assembleCase(deps, caseId, { trigger });
  logger.info('upload ingested', { caseId, uploadId, counts, version: assembled.version });
  return { uploadId, files: files.length, counts, version: assembled.version };
}

function countStates(files: readonly UploadFileRow[]): Record<UploadFileState, number> {
  const counts = Object.fromEntries(UPLOAD_FILE_STATES.map((s) => [s, 0])) as Record<UploadFileState, number>;
  for (const f of files) counts[f.state] += 1;
  return counts;
}

/**
 * Extracts an uploaded zip into rows (one per file and per refused entry); the zip row says what happened.
 *
 * What a zip inflates to is kept in the blob store beside it, so it counts against the case's limit
 * (`MAX_UPLOAD_CASE_BYTES`) like the files uploaded: the extraction may inflate only what the case has
 * left (every file it holds counted, those extracted from its other zips included), and the whole
 * archive is refused past it — `unparsed`, the reason saying so to the case manager, nothing of it
 * kept but the zip. Checked again under the case row lock when the files are recorded (an upload or
 * another zip may have landed meanwhile), before any extracted file is placed in the blob store.
 */
async function expandZip(deps: IngestDeps, zip: UploadFileRow): Promise<void> {
  if (!zip.blobSha256) return;
  const dir = path.join(deps.workDir, zip.id);
  fs.rmSync(dir, { recursive: true, force: true });
  const maxCaseBytes = deps.uploads.maxCaseBytes;
  const overCaseLimit = (held: number, inflated?: number): string =>
    `zip archive refused: ${inflated === undefined ? 'it inflates to more than' : `it inflates to ${humanBytes(inflated)}, more than`} the ` +
    `${humanBytes(Math.max(0, maxCaseBytes - held))} left of the case's upload limit of ${humanBytes(maxCaseBytes)} ` +
    `(${humanBytes(held)} already stored by the case's other files); its files were not kept`;
  // The zip counts as the larger of itself and what it inflates to (caseUploadBytes): what the rest of
  // the case holds, this zip left out, plus that.
  const withoutThisZip = async (db: Queryable): Promise<number> => Math.max(0, (await caseUploadBytes(db, zip.caseId)) - zip.size);
  try {
    const heldBefore = await withoutThisZip(deps.db);
    let extraction;
    try {
      extraction = await extractZip(deps.blobs.pathOf(zip.blobSha256), dir, {
        maxEntries: deps.uploads.maxZipEntries,
        maxTotalBytes: Math.max(0, maxCaseBytes - heldBefore),
        maxRatio: deps.uploads.maxZipRatio,
        maxEntryBytes: deps.uploads.maxFileBytes,
      });
    } catch (err) {
      // A system error (disk full or failing) is ours, not the archive's: the job fails and is retried.
      if (!(err instanceof ZipLimitError)) throw err;
      const reason = err.code === 'too-large' ? overCaseLimit(heldBefore) : `zip archive refused: ${err.message}`;
      await recordParse(deps.db, zip.id, { state: 'unparsed', reason, metadata: { zip: { code: err.code } } });
      return;
    }
    const inflated = extraction.files.reduce((n, f) => n + f.size, 0);
    const rows: NewUploadFile[] = [];
    const child = (position: number) => ({
      id: uuidV5(`${zip.id}/${position}`, EXTRACTED_FILE_NAMESPACE),
      caseId: zip.caseId,
      uploadId: zip.uploadId,
      parentId: zip.id,
      position,
      uploadedBy: zip.uploadedBy,
    });
    for (const file of extraction.files) {
      rows.push({
        ...child(rows.length),
        fileName: file.name,
        kind: file.kind,
        blobSha256: file.sha256,
        sha1Base64: file.sha1Base64,
        size: file.size,
        // Flagged when read (withRowNotes): another entry of the zip has its name.
        ...(file.sameNameAs !== undefined ? { metadata: { zipEntry: { duplicateName: true } } } : {}),
      });
    }
    for (const entry of extraction.refused) {
      rows.push({ ...child(rows.length), fileName: entry.name, kind: 'unknown', size: 0, state: 'unparsed', reason: `refused: ${entry.reason}` });
    }
    // Flushed before the case row is locked (the hard links placed under it are then quick).
    await forEachLimited(extraction.files, FLUSH_CONCURRENCY, (file) => flushFile(file.path));
    await deps.db.transaction(async (tx) => {
      // Serialised with the upload route (and other zips of the case) by the case row lock.
      await tx.query(`SELECT 1 FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`, [zip.caseId]);
      const held = await withoutThisZip(tx);
      if (held + Math.max(zip.size, inflated) > maxCaseBytes) {
        await recordParse(tx, zip.id, { state: 'unparsed', reason: overCaseLimit(held, inflated), metadata: { zip: { code: 'too-large' } } });
        return;
      }
      // Placed a few at a time (a hard link each, and the flush of a fan-out folder it creates), then
      // recorded: 340 CD files took 229–500 ms placed one after another, the case row held meanwhile.
      await forEachLimited(extraction.files, FLUSH_CONCURRENCY, (file) => storeFileAsBlob(deps.blobs, file.path, file.sha256, false));
      for (const file of extraction.files) await recordBlob(tx, { sha256: file.sha256, size: file.size });
      // The blobs' names made durable before their rows commit: once per folder, a few folders at a
      // time (the case row is held meanwhile).
      const placed = new Map(extraction.files.map((f) => [path.dirname(deps.blobs.pathOf(f.sha256)), f.sha256]));
      await forEachLimited([...placed.values()], FLUSH_CONCURRENCY, (sha256) => deps.blobs.flushPlaced(sha256));
      await insertUploadFiles(tx, rows);
      await recordParse(tx, zip.id, {
        state: 'parsed',
        ...(extraction.refused.length > 0 ? { reason: `${extraction.refused.length} entr${extraction.refused.length === 1 ? 'y' : 'ies'} refused` } : {}),
        metadata: { zip: { files: extraction.files.length, refused: extraction.refused.length } },
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Thrown when files could not be read for a reason of the machine, not of the files (the DICOM
 * worker pool closed at shutdown, a thread that did not start, a blob that could not be opened):
 * their rows stay `received` and the job is retried, instead of a permanent `unparsed` verdict.
 */
export class IngestRetryError extends Error {
  constructor(readonly notRead: number, reasons: readonly string[]) {
    super(`${notRead} file(s) not read yet, retried later: ${[...new Set(reasons)].slice(0, 3).join('; ')}`);
    this.name = 'IngestRetryError';
  }
}

/** What reading one file gave: a verdict to record, or a failure of the machine (retried later). */
type FileOutcome = { readonly verdict: Parameters<typeof recordParse>[2] } | { readonly retry: string } | { readonly skip: true };

/**
 * Reads and records every `received` file of the upload. The others are still read when one cannot
 * be for now; then {@link IngestRetryError} is thrown, before identity review and assembly.
 */
async function parseReceivedFiles(deps: IngestDeps, uploadId: string): Promise<void> {
  const received = (await listUploadFiles(deps.db, uploadId)).filter((f) => f.state === 'received');
  // By position: the retry reasons are told in the files' order, however the reads interleave.
  const retries = new Array<string | undefined>(received.length);
  const pdfInspection = oneAtATime();
  await forEachLimited([...received.keys()], READ_CONCURRENCY, async (i) => {
    const file = received[i] as UploadFileRow;
    const outcome = await readFile(deps, file, pdfInspection);
    if ('retry' in outcome) retries[i] = outcome.retry;
    else if ('verdict' in outcome) await recordVerdict(deps.db, file, withRowNotes(file, outcome.verdict));
  });
  const notRead = retries.filter((r): r is string => r !== undefined);
  if (notRead.length > 0) throw new IngestRetryError(notRead.length, notRead);
}

/**
 * Files of an upload read at once. The DICOM thread parses one header at a time (`size: 1`,
 * queues/ingest-upload.ts); meanwhile the other files' first bytes are read and their verdicts written
 * (a database write each) here. PDF inspections — a whole PDF in memory and a thread each — still go
 * one at a time ({@link oneAtATime}). bench:dicom's service rows (340 files, interleaved runs): 626–814
 * files/s one file at a time, 1,079–1,275 four at a time.
 */
const READ_CONCURRENCY = 4;

/** Runs what it is given one at a time, in the order given (a failure does not stop the next). */
function oneAtATime(): <T>(task: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = last.then(task, task);
    last = run.catch(() => undefined);
    return run;
  };
}

/** The gate PDF inspections pass one at a time. */
type PdfInspectionGate = ReturnType<typeof oneAtATime>;

/**
 * Records a file's verdict. When the database refuses what was read from it (a data exception,
 * SQLSTATE class 22, e.g. a value it cannot store), that failure is the file's: it is recorded
 * `unparsed` with the reason, without the metadata, and the rest of the upload proceeds. Any other
 * error (database down) fails the job, which is retried.
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
async function recordVerdict(db: Database, file: UploadFileRow, verdict: Parameters<typeof recordParse>[2]): Promise<void> {
  try {
    await recordParse(db, file.id, verdict);
  } catch (err) {
    if (!isDataException(err)) throw err;
    await recordParse(db, file.id, { state: 'unparsed', reason: `what was read from the file could not be stored: ${errorMessage(err)}` });
  }
}

function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 200);
}

/**
 * DICOM failures of the machine, not verdicts on the file: `io` (cannot open) and `worker-failed` (a
 * thread that crashed, exited or could not start). A thread that ran out of memory on the file is
 * `too-large` (`dicom-worker-pool.ts`): a verdict.
 */
const RETRYABLE_DICOM_CODES: ReadonlySet<DicomFailureCode> = new Set<DicomFailureCode>(['io', 'worker-failed']);

/** Reads one stored file: what it is, or why it cannot be read; or that it cannot be read for now. */
async function readFile(deps: IngestDeps, file: UploadFileRow, pdfInspection: PdfInspectionGate): Promise<FileOutcome> {
  if (!file.blobSha256) return { skip: true };
  switch (file.kind) {
    case 'dicom':
      return readDicom(deps, file, file.blobSha256, pdfInspection);
    case 'pdf':
      return readPdf(deps, file, file.blobSha256, pdfInspection);
    case 'zip':
      return { verdict: { state: 'unparsed', reason: 'a zip inside a zip is not opened; kept as received' } };
    default:
      return { verdict: { state: 'unparsed', reason: 'not a PDF or a DICOM file; kept as received' } };
  }
}

/**
 * Reads a DICOM file: its header in the DICOM worker pool; and, when it is also a PDF (`%PDF-` in its
 * first 1,024 bytes: a polyglot), its PDF inspection as well, which flags it whatever the header.
 */
async function readDicom(deps: IngestDeps, file: UploadFileRow, sha256: string, pdfInspection: PdfInspectionGate): Promise<FileOutcome> {
  const blobPath = deps.blobs.pathOf(sha256);
  let polyglot: boolean;
  try {
    polyglot = hasPdfHeader(await readHead(blobPath, SNIFF_BYTES));
  } catch (err) {
    return { retry: `io: cannot read stored file: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}` };
  }
  const result = await deps.pool.parse(blobPath);
  if (!result.ok && RETRYABLE_DICOM_CODES.has(result.code)) return { retry: `${result.code}: ${result.reason}` };
  let dicom: Parameters<typeof recordParse>[2];
  if (result.ok) {
    // Indexed without the values far longer than DICOM allows; flagged so a person sees why they are missing.
    const metadata = { header: result.header };
    const reason = ownReasons(metadata).join('; ');
    dicom = reason ? { state: 'flagged', reason, metadata } : { state: 'parsed', metadata };
  } else if (result.code === 'dicomdir') {
    dicom = { state: 'parsed', reason: "DICOMDIR: the CD's index of its files (no image of its own)", metadata: { dicomdir: true } };
  } else {
    dicom = { state: 'unparsed', reason: result.reason, metadata: { dicom: { code: result.code } } };
  }
  if (!polyglot) return { verdict: dicom };
  const inspected = await pdfInspection(() => inspectAsPdf(deps, file, sha256));
  if ('retry' in inspected) return inspected;
  const metadata = { ...dicom.metadata, pdf: inspected.pdf, polyglot: true };
  // The header's own reasons (values not read) are recomputed with the polyglot one, in their fixed order.
  const reasons = result.ok ? ownReasons(metadata) : [dicom.reason ?? '', ...ownReasons(metadata)];
  return { verdict: { state: 'flagged', reason: reasons.filter((r) => r !== '').join('; '), metadata, sha1Base64: inspected.sha1Base64 } };
}

/** The first `length` bytes of a file (fewer when it is shorter). */
async function readHead(file: string, length: number): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Why a DICOM file that is also a PDF is flagged (log-safe: no content, no name). */
export const POLYGLOT_REASON =
  'polyglot: this DICOM file is also a PDF (%PDF- in its first 1024 bytes), which a PDF viewer opens as a document; it was inspected as a PDF too';

/** Why a zip entry whose name an earlier entry of the zip has (with other content) is flagged. */
export const DUPLICATE_NAME_REASON = 'another entry of the zip has the same name (with other content): both kept, this one listed with a number after its name';

/**
 * The reasons a file is flagged for that belong to the file itself, not to its study (identity review
 * recomputes the study's and keeps these), in a fixed order: a DICOM/PDF polyglot and what its PDF
 * inspection found; values left out for their length; a zip entry name an earlier entry has.
 */
function ownReasons(metadata: Record<string, unknown>): string[] {
  const reasons: string[] = [];
  if (metadata['polyglot'] === true) {
    const pdf = metadata['pdf'] as PdfInspection | undefined;
    const found = pdf?.activeContent && pdf.activeContent.length > 0 ? `; ${activeContentReason(pdf.activeContent)}` : '';
    const unreadable = pdf && !pdf.ok ? ` (as a PDF: ${pdf.reason})` : '';
    reasons.push(`${POLYGLOT_REASON}${unreadable}${found}`);
  }
  const header = metadata['header'];
  const notRead = typeof header === 'object' && header !== null ? valuesNotReadReason(header as DicomHeader) : undefined;
  if (notRead) reasons.push(notRead);
  if ((metadata['zipEntry'] as { duplicateName?: unknown } | undefined)?.duplicateName === true) reasons.push(DUPLICATE_NAME_REASON);
  return reasons;
}

/**
 * A verdict with what the row knew before the file was read (its `metadata` at insert: a zip entry
 * whose name an earlier entry has): kept in the metadata, its reason added, a `parsed` file `flagged`.
 */
function withRowNotes(file: UploadFileRow, verdict: Parameters<typeof recordParse>[2]): Parameters<typeof recordParse>[2] {
  const zipEntry = file.metadata['zipEntry'];
  if (zipEntry === undefined) return verdict;
  const reasons = [verdict.reason, ...ownReasons({ zipEntry })].filter((r): r is string => r !== undefined && r !== '');
  return { ...verdict, state: verdict.state === 'parsed' ? 'flagged' : verdict.state, reason: reasons.join('; '), metadata: { ...verdict.metadata, zipEntry } };
}

/**
 * What inspecting a stored file as a PDF gave: the inspection, with `limit` (the `flagged` reason) when
 * the file was too large or exceeded the inspection's limits; or a retry.
 */
type PdfRead = { readonly pdf: PdfInspection; readonly sha1Base64?: string; readonly limit?: string } | { readonly retry: string };

async function inspectAsPdf(deps: IngestDeps, file: UploadFileRow, sha256: string): Promise<PdfRead> {
  if (file.size > MAX_PDF_INSPECT_BYTES) {
    const limit = 'PDF too large to inspect; kept as received';
    return { pdf: { ok: false, encrypted: false, reason: limit }, limit };
  }
  let bytes: Buffer;
  try {
    bytes = await deps.blobs.read(sha256);
  } catch (err) {
    return { retry: `io: cannot read stored file: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}` };
  }
  const sha1Base64 = createHash('sha1').update(bytes).digest('base64');
  const outcome = await (deps.inspectPdf ?? inspectPdfInWorker)(bytes, deps.pdfInspect);
  if (outcome.status === 'worker-failed') return { retry: `worker-failed: ${outcome.reason}` };
  if (outcome.status === 'limit') {
    const limit = pdfLimitReason(outcome.reason);
    return { pdf: { ok: false, encrypted: false, reason: limit }, sha1Base64, limit };
  }
  return { pdf: outcome.pdf, sha1Base64 };
}

async function readPdf(deps: IngestDeps, file: UploadFileRow, sha256: string, pdfInspection: PdfInspectionGate): Promise<FileOutcome> {
  if (file.size > MAX_PDF_INSPECT_BYTES) return { verdict: { state: 'flagged', reason: 'PDF too large to inspect; kept as received' } };
  const inspected = await pdfInspection(() => inspectAsPdf(deps, file, sha256));
  if ('retry' in inspected) return inspected;
  const { pdf, sha1Base64, limit } = inspected;
  if (limit !== undefined) return { verdict: { state: 'flagged', reason: limit, metadata: { pdf }, ...(sha1Base64 ? { sha1Base64 } : {}) } };
  if (pdf.ok && pdf.activeContent) {
    return { verdict: { state: 'flagged', reason: activeContentReason(pdf.activeContent), metadata: { pdf }, sha1Base64 } };
  }
  if (pdf.ok) return { verdict: { state: 'parsed', metadata: { pdf }, sha1Base64 } };
  // Damaged but holding active content: flagged for review as well, not merely unreadable.
  const reason = pdf.activeContent ? `${pdf.reason}; ${activeContentReason(pdf.activeContent)}` : pdf.reason;
  return { verdict: { state: pdf.encrypted || pdf.activeContent ? 'flagged' : 'unparsed', reason, metadata: { pdf }, sha1Base64 } };
}

/**
 * Checks the patient in the case's DICOM files against the case patient, per study (a study can
 * span uploads): the files of a study that differs are `flagged` with the log-safe reasons.
 */
async function reviewIdentities(db: Database, caseId: string, intake: Intake): Promise<void> {
  const rows = (await listCaseUploadFiles(db, caseId)).flatMap((row) => {
    const header = storedHeader(row);
    return header && row.blobSha256 ? [{ row, header }] : [];
  });
  if (rows.length === 0) return;
  const reviews = reviewStudyIdentities(
    rows.map(({ row, header }) => ({ header, blobSha256: row.blobSha256 ?? '', fileName: row.fileName })),
    casePatientOf(intake),
    caseId,
  );
  // Two files of different content with one SOP Instance UID (in one series or not): both flagged.
  const conflicts = conflictingSopInstanceUids(rows.map(({ row, header }) => ({ header, blobSha256: row.blobSha256 ?? '', fileName: row.fileName })));
  for (const review of reviews) {
    const identity = review.matches ? undefined : `identity review: ${review.mismatches.join('; ')}`;
    const byReason = new Map<string | null, string[]>();
    for (const { row, header } of rows.filter(({ header }) => header.studyInstanceUid === review.studyInstanceUid)) {
      const conflict = conflicts.has(header.sopInstanceUid) ? SOP_INSTANCE_UID_CONFLICT_REASON : undefined;
      // The file's own reasons (polyglot, values not read, repeated zip entry name) stay in its reason (and keep it flagged).
      const reason = [identity, conflict, ...ownReasons(row.metadata)].filter((r) => r !== undefined).join('; ') || null;
      byReason.set(reason, [...(byReason.get(reason) ?? []), row.id]);
    }
    for (const [reason, ids] of byReason) await recordIdentityVerdict(db, ids, reason);
  }
}
