/**
 * A new version of the case record while a specialist has the case: the case managers (and webhook
 * subscribers) are told, so the specialist reviews what arrived — family uploads, a re-pull, a source
 * removed or re-pointed, a rebuild. After an opinion was signed it names the bundle version that
 * opinion rests on, since new records may call for an amendment.
 * @packageDocumentation
 */
import type { CaseStatus } from '../cases/lifecycle';
import type { Queryable } from '../db/database';
import { recordEvent } from '../notify/events';

/** Statuses in which the case is with a specialist (assigned, under review, or answered). */
const WITH_SPECIALIST: ReadonlySet<string> = new Set<CaseStatus>(['assigned', 'in_review', 'awaiting_information', 'report_signed', 'delivered']);

/**
 * Records `records.updated` for bundle `version` when the case is with a specialist; nothing otherwise.
 * Runs in the transaction that stores the version (the case row is locked there), so the event exists
 * exactly when the version does.
 */
export async function announceRecordsUpdated(tx: Queryable, caseId: string, version: number, trigger: string): Promise<void> {
  const { rows } = await tx.query<{ status: string; opinion_version: number | null; opinion_bundle_version: number | null }>(
    `SELECT c.status, o.version AS opinion_version, o.bundle_version AS opinion_bundle_version
     FROM cases c LEFT JOIN LATERAL (
       SELECT version, bundle_version FROM opinion_versions WHERE case_id = c.id ORDER BY version DESC LIMIT 1
     ) o ON true
     WHERE c.id = $1`,
    [caseId],
  );
  const row = rows[0];
  if (!row || !WITH_SPECIALIST.has(row.status)) return;
  // What the specialist has not seen: since the record the signed opinion rests on, else the version before.
  const changesFrom = row.opinion_bundle_version ?? version - 1;
  await recordEvent(tx, 'records.updated', caseId, {
    caseId,
    version,
    trigger,
    status: row.status,
    ...(row.opinion_version !== null ? { opinionVersion: row.opinion_version, opinionBundleVersion: row.opinion_bundle_version } : {}),
    ...(changesFrom >= 1 && changesFrom !== version ? { changes: `/api/cases/${caseId}/bundle/changes?from=${changesFrom}&to=${version}` } : {}),
  });
}
