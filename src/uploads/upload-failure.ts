/**
 * An upload whose ingestion fails for good (its case too large to assemble in the process, or the
 * database or disk failing through every attempt) must not sit in `assembling` for ever, unseen: it
 * is written on the case timeline (`upload_not_ingested`, with the reason), the case managers are
 * told (`assembly.failed`, naming the upload), and the upload's state says `failed`. The files stay
 * stored; a later run (a worker start re-queues files still `received`) or a rebuild takes them in.
 */
import { CASE_ROW_LOCK, hasCaseEvent, insertCaseEvent } from '../db/case-repository';
import type { Database, Queryable } from '../db/database';
import { recordEvent } from '../notify/events';

/** The timeline event of an upload that could not be ingested. */
export const UPLOAD_NOT_INGESTED = 'upload_not_ingested';

/** Records that `uploadId` could not be ingested and why (no PHI in `reason`); once per upload. */
export async function recordUploadNotIngested(db: Database, caseId: string, uploadId: string, reason: string): Promise<void> {
  await db.transaction(async (tx) => {
    // The case row lock orders two workers recording the same upload (only one writes).
    await tx.query(`SELECT 1 FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`, [caseId]);
    if (await hasCaseEvent(tx, caseId, UPLOAD_NOT_INGESTED, 'uploadId', uploadId)) return;
    await insertCaseEvent(tx, { caseId, type: UPLOAD_NOT_INGESTED, actorSub: 'system:ingest', reason, data: { uploadId } });
    await recordEvent(tx, 'assembly.failed', caseId, { caseId, uploadId, reason });
  });
}

/** An upload recorded as not ingested: why, and the first bundle version assembled since (which holds its files). */
export interface UploadNotIngested {
  readonly reason: string;
  readonly versionSince?: number;
}

/**
 * The case's uploads recorded as not ingested, by upload id, each with the first bundle version
 * assembled after that (a rebuild, another upload): every assembly reads all the case's uploads.
 */
export async function uploadsNotIngested(db: Queryable, caseId: string): Promise<Map<string, UploadNotIngested>> {
  const { rows } = await db.query<{ upload_id: string; reason: string | null; version_since: number | null }>(
    `SELECT e.data->>'uploadId' AS upload_id, e.reason,
            (SELECT min(b.version) FROM case_bundles b WHERE b.case_id = e.case_id AND b.created_at > e.at) AS version_since
     FROM case_events e WHERE e.case_id = $1 AND e.type = $2`,
    [caseId, UPLOAD_NOT_INGESTED],
  );
  return new Map(rows.map((r) => [r.upload_id, { reason: r.reason ?? 'not ingested', ...(r.version_since !== null ? { versionSince: r.version_since } : {}) }]));
}
