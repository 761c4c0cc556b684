/**
 * The upload routes' orchestration: take an upload (stream → blob store → rows → ingest job) and
 * list a case's uploads with their progress and, per file, what it is or why it could not be read.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { discardUnrecordedBlobs, recordBlob, type BlobStore, type PlacedBlob } from '../blobs/blob-store';
import type { UploadConfig } from '../config';
import { CASE_ROW_LOCK, findCase, insertCaseEvent } from '../db/case-repository';
import type { Database } from '../db/database';
import { unauthorized, type Principal } from '../http/auth';
import { keyReused } from '../http/idempotency-key';
import { conflict, HttpProblem, notFound } from '../http/problem';
import { errorFields, logger } from '../log';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';
import { humanBytes, receiveMultipart, type StagedDigest, type StagedUpload } from './multipart-receiver';
import { uploadIdForKey } from './upload-idempotency';
import { uploadsNotIngested } from './upload-failure';
import { uploadTokenStillValid } from './upload-tokens';
import {
  caseUploadBytes,
  insertUploadFiles,
  listCaseUploadFiles,
  listUploadFiles,
  UPLOAD_FILE_STATES,
  type UploadFileRow,
  type UploadFileState,
} from './upload-repository';

/** What the upload routes need. */
export interface UploadServiceDeps {
  readonly db: Database;
  readonly blobs: BlobStore;
  readonly uploads: UploadConfig;
  /** Queues the ingest of an upload (idempotent per upload id). */
  readonly enqueueIngest: (job: { uploadId: string; caseId: string }) => Promise<void>;
}

/** Most files in one request. */
export const MAX_FILES_PER_UPLOAD = 200;
/** Case statuses that take no more uploads. */
const CLOSED_TO_UPLOADS = new Set(['report_signed', 'delivered', 'closed', 'cancelled', 'ineligible']);

/** One file of an upload as the API shows it. */
export interface UploadFileView {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly size: number;
  readonly sha256: string | null;
  readonly state: UploadFileState;
  readonly reason: string | null;
  /** The uploaded zip the file was extracted from. */
  readonly fromZip?: string;
  /** What was read: study/series/instance UIDs and modality, page count, zip counts. */
  readonly details?: Record<string, unknown>;
}

/** One upload with its progress. */
export interface UploadView {
  readonly uploadId: string;
  readonly receivedAt: string;
  readonly uploadedBy: string;
  /**
   * `ingesting` while any file is still `received`, `assembling` until the case bundle includes it, then
   * `ingested`; `failed` when its ingestion failed for good (`failure` says why; the files are kept).
   */
  readonly state: 'ingesting' | 'assembling' | 'ingested' | 'failed';
  /** Why the upload could not be ingested (state `failed`, until a bundle version assembled since holds its files). */
  readonly failure?: string;
  /** The case bundle version assembled for this upload, once there is one. */
  readonly bundleVersion?: number;
  readonly bytes: number;
  readonly progress: Record<UploadFileState, number> & { readonly files: number };
  readonly files: UploadFileView[];
}

async function uploadView(db: Database, caseId: string, uploadId: string): Promise<UploadView> {
  const view = (await listUploads(db, caseId)).find((u) => u.uploadId === uploadId);
  if (!view) throw new Error('upload not found after insert');
  return view;
}

/** Whether the files of a stored upload are the same files, in the same order, as `sha256`. */
function sameFiles(files: readonly UploadFileRow[], sha256: readonly string[]): boolean {
  const sent = files.filter((f) => f.parentId === null).sort((a, b) => a.position - b.position);
  return sent.length === sha256.length && sent.every((f, i) => f.blobSha256 === sha256[i]);
}

/**
 * Receives an upload; answers once every file is stored and the ingest is queued. With an
 * `Idempotency-Key`, a resend of an upload already stored answers that upload (`replayed`) when it
 * sends the same files (by content, in order); other files under a used key are a 422 naming the key
 * (they would otherwise be dropped while the answer says they were received).
 */
export async function receiveUpload(
  deps: UploadServiceDeps,
  caseId: string,
  req: Request,
  principal: Principal,
): Promise<{ upload: UploadView; replayed: boolean }> {
  const record = await findCase(deps.db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  if (CLOSED_TO_UPLOADS.has(record.status)) throw conflict(`Case ${caseId} is ${record.status}: it takes no more uploads.`);
  const keyed = uploadIdForKey(caseId, req.headers['idempotency-key']);
  const earlier = keyed === undefined ? [] : await listUploadFiles(deps.db, keyed);
  const resent = keyed !== undefined && earlier.length > 0;
  // A resend is read to compare it (nothing of it is stored, so the case's stored bytes do not count).
  const before = resent ? 0 : await caseUploadBytes(deps.db, caseId);
  const staged = await receiveMultipart(req, deps.blobs, {
    maxFileBytes: deps.uploads.maxFileBytes,
    maxCaseBytes: deps.uploads.maxCaseBytes,
    caseBytesBefore: before,
    maxFiles: MAX_FILES_PER_UPLOAD,
  });
  const digests = staged.digests();
  if (resent) {
    const same = sameFiles(earlier, digests.map((d) => d.sha256));
    staged.abort();
    if (!same) throw keyReused('upload');
    return { upload: await uploadView(deps.db, caseId, keyed), replayed: true };
  }
  const uploadId = keyed ?? randomUUID();
  const bytes = staged.files.reduce((n, f) => n + f.size, 0);
  const at = new Date();
  let stored: boolean;
  try {
    stored = await recordUpload(deps, { caseId, uploadId, keyed, principal, staged, digests, bytes, at });
  } catch (err) {
    // Refused (409, 413, 422) or failed: no file of it stays, staged or placed in the store.
    staged.abort();
    await discardUnrecorded(deps, caseId, staged.placed());
    throw err;
  }
  if (!stored) {
    // A resend that landed first with the same files holds them: nothing of this one is kept.
    staged.abort();
    return { upload: await uploadView(deps.db, caseId, uploadId), replayed: true };
  }
  logger.info('upload received', { caseId, uploadId, count: staged.files.length, bytes });
  // The rows say what is left to ingest: a Redis that hangs or fails is left to the reconciler (and a
  // starting ingest worker), which re-queue it; the 202 does not wait for Redis.
  await enqueueAfterCommit(() => deps.enqueueIngest({ uploadId, caseId }), { what: 'upload ingest', sweep: 'the pull reconciler', ids: { caseId, uploadId } });
  return { upload: await uploadView(deps.db, caseId, uploadId), replayed: false };
}

/**
 * Removes the files an upload placed in the blob store when its rows were not written after all (its
 * transaction failed once they were placed): see `discardUnrecordedBlobs`. Counts only are logged.
 */
async function discardUnrecorded(deps: UploadServiceDeps, caseId: string, placed: readonly PlacedBlob[]): Promise<void> {
  if (placed.length === 0) return;
  try {
    const removed = await discardUnrecordedBlobs(deps.db, deps.blobs, placed);
    logger.warn('upload not recorded: its placed files removed', { caseId, placed: placed.length, removed });
  } catch (err) {
    logger.warn('upload not recorded: its placed files kept (their use could not be checked)', { caseId, placed: placed.length, ...errorFields(err) });
  }
}

/** What {@link recordUpload} records. */
interface UploadToRecord {
  readonly caseId: string;
  readonly uploadId: string;
  /** The upload id derived from the request's `Idempotency-Key`, when it sent one. */
  readonly keyed: string | undefined;
  readonly principal: Principal;
  readonly staged: StagedUpload;
  readonly digests: readonly StagedDigest[];
  readonly bytes: number;
  readonly at: Date;
}

/**
 * Records a staged upload in one transaction: the case row locked, what may have changed while the
 * files streamed checked again (409, 413, 422 before any file is placed), the rows written, and only
 * then the files moved into the blob store, last before the commit, so a refusal places nothing.
 * @returns false when a resend with the same key and files landed first (nothing recorded)
 */
async function recordUpload(deps: UploadServiceDeps, upload: UploadToRecord): Promise<boolean> {
  const { caseId, uploadId, keyed, principal, staged, digests, bytes, at } = upload;
  return deps.db.transaction(async (tx) => {
    // Serialise uploads of one case with each other and with its transitions, then check again what
    // may have changed while the files streamed: the case ended (cancelled, say: its upload tokens
    // were revoked, but this request was already past them), another upload landed.
    const locked = await tx.query<{ status: string }>(`SELECT status FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`, [caseId]);
    const status = locked.rows[0]?.status;
    if (status === undefined) throw notFound(`Case ${caseId}`);
    if (CLOSED_TO_UPLOADS.has(status)) throw conflict(`Case ${caseId} is ${status}: it takes no more uploads.`);
    // The upload token revoked while the files streamed (a leaked link): 401, nothing kept.
    if (!(await uploadTokenStillValid(tx, principal, caseId))) {
      throw unauthorized('The upload token was revoked while the files were sent; nothing was kept. Ask the case manager for a new one.', true);
    }
    // A resend with the same key that arrived while this one streamed landed first: keep that one
    // (when it sent the same files).
    const landed = keyed === undefined ? [] : await listUploadFiles(tx, keyed);
    if (landed.length > 0) {
      if (!sameFiles(landed, digests.map((d) => d.sha256))) throw keyReused('upload');
      return false;
    }
    const now = await caseUploadBytes(tx, caseId);
    if (now + bytes > deps.uploads.maxCaseBytes) {
      throw new HttpProblem(
        413,
        'Payload Too Large',
        `This upload would take the case's uploads past their limit of ${humanBytes(deps.uploads.maxCaseBytes)} (${humanBytes(now)} already stored).`,
      );
    }
    await insertUploadFiles(
      tx,
      staged.files.map((f, position) => {
        const digest = digests[position];
        return {
          id: randomUUID(),
          caseId,
          uploadId,
          position,
          fileName: f.name,
          kind: f.kind,
          contentType: f.contentType,
          size: f.size,
          uploadedBy: principal.sub,
          ...(digest ? { blobSha256: digest.sha256, sha1Base64: digest.sha1Base64 } : {}),
        };
      }),
      at,
    );
    for (const [i, d] of digests.entries()) await recordBlob(tx, { sha256: d.sha256, size: d.size, contentType: staged.files[i]?.contentType });
    await insertCaseEvent(tx, {
      caseId,
      type: 'upload_received',
      actorSub: principal.sub,
      actorRole: principal.scope ? 'upload-token' : principal.roles[0],
      reason: `${staged.files.length} file(s), ${humanBytes(bytes)}`,
      data: { uploadId, files: staged.files.length, bytes },
      at,
    });
    // Last: a failure from here on (a file our disk cannot move, the commit) leaves files for the caller to discard.
    await staged.commit();
    return true;
  });
}

/** The case's uploads, oldest first, each with its files and progress. */
export async function listUploads(db: Database, caseId: string): Promise<UploadView[]> {
  const [rows, bundles, failures] = await Promise.all([
    listCaseUploadFiles(db, caseId),
    db.query<{ trigger: string; version: number }>("SELECT trigger, version FROM case_bundles WHERE case_id = $1 AND trigger LIKE 'upload:%'", [caseId]),
    uploadsNotIngested(db, caseId),
  ]);
  const versions = new Map(bundles.rows.map((b) => [b.trigger.slice('upload:'.length), b.version]));
  const byUpload = new Map<string, UploadFileRow[]>();
  for (const row of rows) {
    const list = byUpload.get(row.uploadId);
    if (list) list.push(row);
    else byUpload.set(row.uploadId, [row]);
  }
  return [...byUpload.entries()].map(([uploadId, files]) => {
    const top = files.filter((f) => f.parentId === null);
    const counts = Object.fromEntries(UPLOAD_FILE_STATES.map((s) => [s, 0])) as Record<UploadFileState, number>;
    for (const f of files) counts[f.state] += 1;
    const notIngested = failures.get(uploadId);
    // A version assembled after the failure (a rebuild) holds the upload's files, once they are all read.
    const bundleVersion = versions.get(uploadId) ?? (counts.received === 0 ? notIngested?.versionSince : undefined);
    const failure = bundleVersion === undefined ? notIngested?.reason : undefined;
    return {
      uploadId,
      receivedAt: (top[0] ?? files[0])?.createdAt.toISOString() ?? '',
      uploadedBy: (top[0] ?? files[0])?.uploadedBy ?? '',
      state: failure !== undefined ? 'failed' : counts.received > 0 ? 'ingesting' : bundleVersion === undefined ? 'assembling' : 'ingested',
      ...(failure !== undefined ? { failure } : {}),
      ...(bundleVersion !== undefined ? { bundleVersion } : {}),
      bytes: top.reduce((n, f) => n + f.size, 0),
      progress: { files: files.length, ...counts },
      files: files.map(fileView),
    };
  });
}

function fileView(row: UploadFileRow): UploadFileView {
  const details = detailsOf(row);
  return {
    id: row.id,
    name: row.fileName,
    kind: row.kind,
    size: row.size,
    sha256: row.blobSha256,
    state: row.state,
    reason: row.reason,
    ...(row.parentId ? { fromZip: row.parentId } : {}),
    ...(details ? { details } : {}),
  };
}

/** What was read, without the patient fields of DICOM headers (those are for the bundle and identity review). */
function detailsOf(row: UploadFileRow): Record<string, unknown> | undefined {
  const m = row.metadata;
  const header = m['header'] as Record<string, unknown> | undefined;
  if (header) {
    const keys = ['studyInstanceUid', 'seriesInstanceUid', 'sopInstanceUid', 'modality', 'seriesNumber', 'instanceNumber', 'numberOfFrames', 'transferSyntaxUid'];
    return Object.fromEntries(keys.filter((k) => header[k] !== undefined).map((k) => [k, header[k]]));
  }
  const pdf = m['pdf'] as { pageCount?: number; encrypted?: boolean } | undefined;
  if (pdf) return { pageCount: pdf.pageCount, encrypted: pdf.encrypted };
  if (m['zip']) return m['zip'] as Record<string, unknown>;
  if (m['dicomdir']) return { dicomdir: true };
  return undefined;
}
