/**
 * The `uploads` table (migration 005): one row per file as uploaded, and one per file found inside an
 * uploaded zip. Plain functions over `Queryable`, so they run inside and outside a transaction.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { TERMINAL_STATUSES } from '../cases/lifecycle';
import type { FileKind } from './sniff';
import { storableFileName, storableJson, storableText } from '../util/storable-text';
import { UPLOAD_NOT_INGESTED } from './upload-failure';

/** Where a file is in its ingest. */
export type UploadFileState = 'received' | 'parsed' | 'unparsed' | 'flagged';
/** Every state, in ingest order. */
export const UPLOAD_FILE_STATES: readonly UploadFileState[] = ['received', 'parsed', 'unparsed', 'flagged'];

/** One file row. `fileName` and `metadata` may hold PHI: never log them. */
export interface UploadFileRow {
  readonly id: string;
  readonly caseId: string;
  readonly uploadId: string;
  readonly parentId: string | null;
  readonly position: number;
  readonly fileName: string;
  readonly kind: FileKind;
  readonly contentType: string | null;
  readonly blobSha256: string | null;
  readonly sha1Base64: string | null;
  readonly size: number;
  readonly state: UploadFileState;
  readonly reason: string | null;
  readonly metadata: Record<string, unknown>;
  readonly origin: string;
  readonly uploadedBy: string;
  readonly createdAt: Date;
  readonly parsedAt: Date | null;
}

/** A row to insert (state `received` unless said otherwise). */
export interface NewUploadFile {
  readonly id: string;
  readonly caseId: string;
  readonly uploadId: string;
  readonly parentId?: string;
  readonly position: number;
  readonly fileName: string;
  readonly kind: FileKind;
  readonly contentType?: string;
  readonly blobSha256?: string;
  readonly sha1Base64?: string;
  readonly size: number;
  readonly state?: UploadFileState;
  readonly reason?: string;
  /**
   * What is known of the file before it is read (e.g. `zipEntry: { duplicateName: true }` for a zip
   * entry whose name an earlier entry has): kept when its verdict is recorded (`ingest.ts`). Default `{}`.
   */
  readonly metadata?: Record<string, unknown>;
  readonly uploadedBy: string;
}

interface Row {
  id: string;
  case_id: string;
  upload_id: string;
  parent_id: string | null;
  position: number;
  file_name: string;
  kind: FileKind;
  content_type: string | null;
  blob_sha256: string | null;
  sha1_base64: string | null;
  size: number;
  state: UploadFileState;
  reason: string | null;
  metadata: Record<string, unknown>;
  origin: string;
  uploaded_by: string;
  created_at: Date;
  parsed_at: Date | null;
}

const COLUMNS = `id, case_id, upload_id, parent_id, position, file_name, kind, content_type, blob_sha256, sha1_base64,
  size, state, reason, metadata, origin, uploaded_by, created_at, parsed_at`;

/** Top-level files first, in upload order; files of a zip after it, in archive order. */
const ORDER = 'ORDER BY created_at, upload_id, parent_id NULLS FIRST, position';

function toRow(r: Row): UploadFileRow {
  return {
    id: r.id,
    caseId: r.case_id,
    uploadId: r.upload_id,
    parentId: r.parent_id,
    position: r.position,
    fileName: r.file_name,
    kind: r.kind,
    contentType: r.content_type,
    blobSha256: r.blob_sha256,
    sha1Base64: r.sha1_base64,
    size: Number(r.size),
    state: r.state,
    reason: r.reason,
    metadata: r.metadata,
    origin: r.origin,
    uploadedBy: r.uploaded_by,
    createdAt: r.created_at,
    parsedAt: r.parsed_at,
  };
}

/**
 * Bytes counted against the case's `MAX_UPLOAD_CASE_BYTES`: each file as uploaded, a zip as the larger
 * of itself and what was extracted from it. So a family's zip counts once (not as the zip plus its
 * files: two 1 GiB CD zips inflating to 2 GiB each fit a 4 GiB case), and a small zip that inflates
 * to gigabytes counts as what it inflated to. The blob store holds at most twice the limit (zips
 * and their files are both kept).
 */
export async function caseUploadBytes(db: Queryable, caseId: string): Promise<number> {
  const { rows } = await db.query<{ bytes: string | number | null }>(
    `SELECT sum(GREATEST(u.size, coalesce(x.extracted, 0))) AS bytes
     FROM uploads u
     LEFT JOIN (SELECT parent_id, sum(size) AS extracted FROM uploads WHERE case_id = $1 AND parent_id IS NOT NULL GROUP BY parent_id) x ON x.parent_id = u.id
     WHERE u.case_id = $1 AND u.parent_id IS NULL`,
    [caseId],
  );
  return Number(rows[0]?.bytes ?? 0);
}

/**
 * Inserts file rows; a row whose id exists already is left as it is (idempotent re-runs). Names and
 * reasons are made storable ({@link storableText}): PostgreSQL refuses NUL in text. Names are also made
 * honest ({@link storableFileName}): a control or bidi formatting character (`invoice\u202Efdp.exe`)
 * becomes U+FFFD, so the name is shown in its real order — whether it came in a multipart part or a zip.
 */
export async function insertUploadFiles(db: Queryable, files: readonly NewUploadFile[], at: Date = new Date()): Promise<void> {
  for (const f of files) {
    const state = f.state ?? 'received';
    await db.query(
      `INSERT INTO uploads (id, case_id, upload_id, parent_id, position, file_name, kind, content_type, blob_sha256, sha1_base64,
                            size, state, reason, uploaded_by, created_at, parsed_at, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
       ON CONFLICT (id) DO NOTHING`,
      [
        f.id,
        f.caseId,
        f.uploadId,
        f.parentId ?? null,
        f.position,
        storableFileName(f.fileName),
        f.kind,
        f.contentType ?? null,
        f.blobSha256 ?? null,
        f.sha1Base64 ?? null,
        f.size,
        state,
        f.reason === undefined ? null : storableText(f.reason),
        f.uploadedBy,
        at,
        state === 'received' ? null : at,
        storableJson(f.metadata ?? {}),
      ],
    );
  }
}

/** Every file row of a case. */
export async function listCaseUploadFiles(db: Queryable, caseId: string): Promise<UploadFileRow[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM uploads WHERE case_id = $1 ${ORDER}`, [caseId]);
  return rows.map(toRow);
}

/** Every file row of one upload. */
export async function listUploadFiles(db: Queryable, uploadId: string): Promise<UploadFileRow[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM uploads WHERE upload_id = $1 ${ORDER}`, [uploadId]);
  return rows.map(toRow);
}

/** One file row of a case. */
export async function findUploadFile(db: Queryable, caseId: string, fileId: string): Promise<UploadFileRow | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM uploads WHERE case_id = $1 AND id = $2`, [caseId, fileId]);
  const row = rows[0];
  return row ? toRow(row) : undefined;
}

/**
 * Records the outcome of parsing a `received` file (a file already decided is left as it is). The
 * reason and metadata are made storable ({@link storableJson}): they hold values read from the file.
 */
export async function recordParse(
  db: Queryable,
  fileId: string,
  outcome: { state: Exclude<UploadFileState, 'received'>; reason?: string; metadata?: Record<string, unknown>; sha1Base64?: string },
): Promise<void> {
  await db.query(
    `UPDATE uploads SET state = $2, reason = $3, metadata = $4, sha1_base64 = COALESCE(sha1_base64, $5), parsed_at = now()
     WHERE id = $1 AND state = 'received'`,
    [fileId, outcome.state, outcome.reason === undefined ? null : storableText(outcome.reason), storableJson(outcome.metadata ?? {}), outcome.sha1Base64 ?? null],
  );
}

/** Sets the identity verdict of parsed DICOM files: `flagged` with the reason, or back to `parsed`. */
export async function recordIdentityVerdict(db: Queryable, fileIds: readonly string[], reason: string | null): Promise<void> {
  if (fileIds.length === 0) return;
  await db.query(
    `UPDATE uploads SET state = $2, reason = $3 WHERE id = ANY($1::uuid[]) AND kind = 'dicom' AND state IN ('parsed', 'flagged')`,
    [fileIds, reason === null ? 'parsed' : 'flagged', reason === null ? null : storableText(reason)],
  );
}

/** An upload whose ingestion has not ended, and whether it was recorded as not ingested. */
export interface UploadWaitingForIngest {
  readonly uploadId: string;
  readonly caseId: string;
  /** Its ingestion failed for good and was recorded (`upload_not_ingested`): files are still unread. */
  readonly notIngested: boolean;
}

/**
 * Uploads whose ingestion has not ended (re-queued at worker start and by the reconciler): those
 * with files still `received`, and those whose files were all read but that have no bundle version
 * of their own (trigger `upload:<id>`) and no recorded failure — their assembly was lost with the
 * job, and they would show `assembling` for ever. Only of cases that have not ended (closed,
 * cancelled, ineligible: nothing is assembled for them any more), so the reconciler's query every
 * 30 s reads the uploads of the cases under way, not every upload ever made.
 */
export async function uploadsWaitingForIngest(db: Queryable): Promise<UploadWaitingForIngest[]> {
  const { rows } = await db.query<{ upload_id: string; case_id: string; not_ingested: boolean }>(
    `SELECT w.upload_id, w.case_id, w.not_ingested FROM (
       SELECT u.upload_id, u.case_id, bool_or(u.state = 'received') AS unread,
         EXISTS (SELECT 1 FROM case_bundles b WHERE b.case_id = u.case_id AND b.trigger = 'upload:' || u.upload_id::text) AS assembled,
         EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = u.case_id AND e.type = $1 AND e.data->>'uploadId' = u.upload_id::text) AS not_ingested
       FROM uploads u JOIN cases c ON c.id = u.case_id AND NOT (c.status = ANY($2::text[]))
       GROUP BY u.upload_id, u.case_id
     ) w
     WHERE w.unread OR NOT (w.assembled OR w.not_ingested)
     ORDER BY w.upload_id`,
    [UPLOAD_NOT_INGESTED, TERMINAL_STATUSES],
  );
  return rows.map((r) => ({ uploadId: r.upload_id, caseId: r.case_id, notIngested: r.not_ingested }));
}
