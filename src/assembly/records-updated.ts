/**
 * A new version of the case record while a specialist has the case: the case managers (and webhook
 * subscribers) are told, so the specialist reviews what arrived — family uploads, a re-pull, a source
 * removed or re-pointed, a rebuild. After an opinion was signed it names the bundle version that
 * opinion rests on, since new records may call for an amendment.
 * @packageDocumentation
 */
import type { CaseStatus } from '../cases/lifecycle';
import { findCase } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { recordEvent } from '../notify/events';
import { findVersion } from '../opinion/opinion-repository';
import { caseSpecialistState } from '../review/assignment-repository';

/** Statuses in which the case is with a specialist (assigned, under review, or answered). */
const WITH_SPECIALIST: ReadonlySet<string> = new Set<CaseStatus>(['assigned', 'in_review', 'awaiting_information', 'report_signed', 'delivered']);


/**
 * Records `records.updated` for bundle `version` when the case is with a specialist; nothing otherwise.
 * Its data says whether that specialist can still act on it (`specialist`, `caseSpecialistState`):
 * when not, the case managers are told to give the case to another one.
 * Runs in the transaction that stores the version (the case row is locked there), so the event exists
 * exactly when the version does.
 */
export async function announceRecordsUpdated(tx: Queryable, caseId: string, version: number, trigger: string): Promise<void> {
  const record = await findCase(tx, caseId);
  if (!record || !WITH_SPECIALIST.has(record.status)) return;
  const opinion = await findVersion(tx, caseId);
  // What the specialist has not seen: since the record the signed opinion rests on, else the version before.
  const changesFrom = opinion?.bundleVersion ?? version - 1;
  const specialist = await caseSpecialistState(tx, caseId);
  await recordEvent(tx, 'records.updated', caseId, {
    caseId,
    version,
    trigger,
    status: record.status,
    ...(specialist ? { specialist } : {}),
    ...(opinion ? { opinionVersion: opinion.version, opinionBundleVersion: opinion.bundleVersion } : {}),
    ...(changesFrom >= 1 && changesFrom !== version ? { changes: `/api/cases/${caseId}/bundle/changes?from=${changesFrom}&to=${version}` } : {}),
  });
}
