/**
 * `POST /api/cases/:id/assignment`: gives a case whose records are complete and whose quote is paid
 * to a named specialist or to the best match, moving it to `assigned` in the same transaction.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import type { Queryable } from '../db/database';
import type { CaseRecord } from '../db/case-repository';
import type { Principal } from '../http/auth';
import type { Intake } from '../cases/intake-schema';
import { conflict, HttpProblem, notFound } from '../http/problem';
import { logger } from '../log';
import { caseFor, nowOf } from '../billing/billing-deps';
import { quoteOfCase } from '../billing/case-quote';
import { paidCents } from '../billing/payment-repository';
import { paymentStatus } from '../billing/payment-status';
import { outdatedRecords } from '../assembly/source-changes';
import { missingForAssignment } from './assignment-readiness';
import { findCurrentAssignment, findReleasedAssignment, insertAssignment, specialistsReassignedAway, type AssignmentRecord } from './assignment-repository';
import { caseDiagnosisCodes } from './case-diagnoses';
import { displayName } from './practitioner';
import { lockSpecialist, OPEN_REVIEW_STATUSES, type SpecialistRecord } from './specialist-repository';
import { getSpecialist, type SpecialistView } from './specialist-service';
import { matchSpecialist } from './specialist-match';
import { rankSpecialties, type RankedSpecialty } from './specialty-matching';

/** Name a specialist, or ask for the best match. */
export type AssignmentRequest = { readonly specialistId: string } | { readonly match: true };

/** What the assignment routes answer. */
export interface AssignmentView {
  readonly id: string;
  readonly caseId: string;
  readonly method: 'named' | 'matched';
  readonly matchedSpecialty: string | null;
  readonly assignedBy: string;
  readonly assignedAt: string;
  readonly specialist: SpecialistView;
}

/** What the assignment routes answer for `a`. */
export async function assignmentView(deps: CaseServiceDeps, a: AssignmentRecord): Promise<AssignmentView> {
  return {
    id: a.id,
    caseId: a.caseId,
    method: a.method,
    matchedSpecialty: a.matchedSpecialty,
    assignedBy: a.assignedBy,
    assignedAt: a.assignedAt.toISOString(),
    specialist: await getSpecialist(deps, a.specialistId),
  };
}

/** The specialist chosen for a case, and the specialty that matched (best-match requests only). */
export interface ChosenSpecialist {
  readonly specialist: SpecialistRecord;
  readonly specialty: RankedSpecialty | undefined;
}

/**
 * The specialist `request` names (active, not the referring physician) or the best match for the
 * case's diagnosis codes, never `excludedSpecialistId` (the one a reassignment takes the case from).
 * The best match is never a specialist the case was reassigned away from before
 * ({@link specialistsReassignedAway}): a repeated (double-submitted, retried, or sent by a second
 * case manager) "best match" reassignment does not hand the case back to the one it was taken from.
 * The chosen specialist's row is locked until the transaction `tx` ends, so it cannot be deactivated
 * between this check and the assignment's commit.
 * @throws HttpProblem 404 for an unknown specialist; 409 when the named one cannot take the case or
 *   no active specialist fits
 */
export async function chooseSpecialist(
  deps: CaseServiceDeps,
  tx: Queryable,
  record: CaseRecord,
  request: AssignmentRequest,
  excludedSpecialistId?: string,
): Promise<ChosenSpecialist> {
  // The physician who asked for the second opinion does not give it.
  const referringNpi = (record.intake as Intake).referringPhysician?.npi;
  if ('specialistId' in request) {
    // Locked: a deactivation racing this assignment is seen (committed first) or waits for it.
    const named = await lockSpecialist(tx, request.specialistId);
    if (!named) throw notFound(`Specialist ${request.specialistId}`);
    if (named.id === excludedSpecialistId) throw conflict(`The case is already assigned to ${displayName(named)}.`, { field: 'specialistId' });
    if (!named.active) throw conflict(`${displayName(named)} is not active in the directory.`, { field: 'specialistId' });
    if (named.npi === referringNpi) {
      throw conflict(`${displayName(named)} is the referring physician of this case (NPI ${named.npi}): a second opinion comes from another specialist.`, { field: 'specialistId' });
    }
    return { specialist: named, specialty: undefined };
  }
  const codes = await caseDiagnosisCodes(tx, record);
  const ranked = rankSpecialties(deps.domain.specialtyMatching, codes);
  if (ranked.length === 0) {
    throw conflict(
      `No specialty matches the case's diagnosis codes (${codes.map((c) => `${c.system}|${c.code}`).join(', ') || 'none'}); name a specialist instead.`,
      { diagnosisCodes: codes },
    );
  }
  const reassignedAway = await specialistsReassignedAway(tx, record.id);
  const excluded = [...(excludedSpecialistId === undefined ? [] : [excludedSpecialistId]), ...reassignedAway];
  const match = await lockedMatch(tx, ranked, referringNpi, excluded);
  if (!match) {
    const others = [
      ...(excludedSpecialistId ? ['the one assigned now'] : []),
      ...(reassignedAway.some((id) => id !== excludedSpecialistId) ? ['those the case was reassigned away from'] : []),
    ];
    throw conflict(`No active specialist in ${ranked.map((r) => `${r.display} (${r.code})`).join(', ')}${others.length > 0 ? ` other than ${others.join(' and ')}` : ''}; add one or name a specialist.`, {
      specialties: ranked,
      ...(reassignedAway.length > 0 ? { reassignedAwayFrom: reassignedAway } : {}),
    });
  }
  return { specialist: match.specialist, specialty: match.specialty };
}

/** How often the best match is sought again when the one found changed in the directory meanwhile. */
const MATCH_ATTEMPTS = 3;

/**
 * The best match (see {@link matchSpecialist}) with its row locked, still active and in the matched
 * specialty: one deactivated (or given other specialties) while the match was sought is passed over
 * and the match sought again.
 */
async function lockedMatch(
  tx: Queryable,
  ranked: readonly RankedSpecialty[],
  referringNpi: string | undefined,
  excludedSpecialistIds: readonly string[],
): Promise<{ specialist: SpecialistRecord; specialty: RankedSpecialty } | undefined> {
  for (let attempt = 0; attempt < MATCH_ATTEMPTS; attempt += 1) {
    const match = await matchSpecialist(tx, ranked, referringNpi, excludedSpecialistIds);
    if (!match) return undefined;
    const locked = await lockSpecialist(tx, match.specialist.id);
    if (locked?.active && locked.specialties.includes(match.specialty.code)) return { specialist: locked, specialty: match.specialty };
  }
  return undefined;
}

/** The assignment row of `chosen` for the case, made by `actor` at `now`. */
export function newAssignment(caseId: string, chosen: ChosenSpecialist, actor: Principal, now: Date): AssignmentRecord {
  return {
    id: randomUUID(),
    caseId,
    specialistId: chosen.specialist.id,
    method: chosen.specialty ? 'matched' : 'named',
    matchedSpecialty: chosen.specialty?.code ?? null,
    assignedBy: actor.sub,
    assignedAt: now,
  };
}

const ASSIGNABLE_LATER: readonly string[] = ['submitted', 'collecting_records', 'records_complete'];

/**
 * Whether the case waits for a new specialist: in review (assigned, in_review, awaiting_information)
 * without a current assignment, because a deactivation released it (`specialist-deactivation.ts`).
 */
async function waitsForNewSpecialist(db: Queryable, record: CaseRecord): Promise<boolean> {
  return OPEN_REVIEW_STATUSES.includes(record.status) && (await findReleasedAssignment(db, record.id)) !== undefined;
}

/** What a case manager does with a case released by a deactivation. */
const giveReleasedCase = (caseId: string): string =>
  `Its specialist was deactivated and it waits for a new specialist: give it to one with PUT /api/cases/${caseId}/assignment ({specialistId} or {match: true}, and a reason).`;

/**
 * Assigns the case.
 * @throws HttpProblem 409 listing every missing requirement (records, payment), when the case is
 *   already assigned, or when no active specialist fits; 404 for an unknown specialist
 */
export async function assignCase(deps: CaseServiceDeps, caseId: string, request: AssignmentRequest, actor: Principal): Promise<AssignmentView> {
  const now = nowOf(deps);
  const assignment = await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true, 'The case cannot be assigned');
    if (!ASSIGNABLE_LATER.includes(record.status)) {
      const released = await waitsForNewSpecialist(tx, record);
      throw conflict(`The case is already ${record.status}; it was assigned before.${released ? ` ${giveReleasedCase(caseId)}` : ''}`, { currentStatus: record.status });
    }
    const payment = paymentStatus(quoteOfCase(deps.domain.prices, record), await paidCents(tx, caseId));
    const missing = missingForAssignment(record.status, payment, await outdatedRecords(tx, caseId));
    if (missing.length > 0) {
      throw conflict(`The case cannot be assigned yet. ${missing.map((m) => m.detail).join(' ')}`, { missing, payment });
    }
    const chosen = await chooseSpecialist(deps, tx, record, request);
    const { specialist, specialty } = chosen;
    const row = newAssignment(caseId, chosen, actor, now);
    await insertAssignment(tx, row);
    await transitionCase(deps, tx, {
      id: caseId,
      to: 'assigned',
      reason: specialty
        ? `Assigned to ${displayName(specialist)}, best match in ${specialty.display}.`
        : `Assigned to ${displayName(specialist)}.`,
      actor,
      now,
      data: { assignmentId: row.id, specialistId: specialist.id, method: row.method, specialty: specialty?.code },
    });
    return row;
  });
  logger.info('case assigned', { caseId, userId: assignment.specialistId, method: assignment.method });
  return assignmentView(deps, assignment);
}

/** The case's current assignment; 404 when the case has none (saying so when a deactivation released it). */
export async function getAssignment(deps: CaseServiceDeps, caseId: string): Promise<AssignmentView> {
  const record = await caseFor(deps.db, caseId, false);
  const current = await findCurrentAssignment(deps.db, caseId);
  if (current) return assignmentView(deps, current);
  const released = await waitsForNewSpecialist(deps.db, record);
  throw new HttpProblem(404, 'Not Found', released ? `Case ${caseId} is not assigned. ${giveReleasedCase(caseId)}` : `Case ${caseId} is not assigned yet.`);
}
