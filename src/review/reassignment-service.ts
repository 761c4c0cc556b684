/**
 * `PUT /api/cases/:id/assignment`: gives an assigned case to another specialist — the one assigned
 * is away, conflicted, or asks to hand it over. The case keeps its status, SLA clock, information
 * requests and opinion draft; in one transaction the current assignment ends (`ended_at`), the new
 * one starts, and the timeline says who took it from whom and why. From then on the case's access
 * rules, worklists and opinion authorship follow the new assignment: the previous specialist no
 * longer reads the case, and a draft they left is signed only after the new specialist saves it as
 * their own (the signer must be the draft's author, `opinion-service.ts`).
 *
 * A case can also be *released*: its specialist was deactivated and no other one fitted
 * (`specialist-deactivation.ts`). It then has no current assignment, keeps its status, and waits
 * for a case manager to give it to a specialist through this same route.
 *
 * Not once a report is signed: a correction is made, and signed, by the report's author. Except
 * when that author was deactivated since (the deactivation leaves a signed case with its signer,
 * whose token opens no case any more): a `report_signed` or `delivered` case whose current
 * specialist is inactive is handed over like any other, so that someone can write the amendment (a
 * new signed version, FHIR `amended`, authored by the new specialist: `opinion-service.ts` takes the
 * author from the current assignment). The case keeps its status; the signed versions keep their
 * signer. A `closed` (or `cancelled`) case is never reassigned.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import { insertCaseEvent, type CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { primaryRole, type Principal } from '../http/auth';
import { conflict } from '../http/problem';
import { logger } from '../log';
import { caseFor, nowOf } from '../billing/billing-deps';
import { endAssignment, findCurrentAssignment, findReleasedAssignment, insertAssignment, type AssignmentRecord } from './assignment-repository';
import { assignmentView, chooseSpecialist, newAssignment, type AssignmentRequest, type AssignmentView, type ChosenSpecialist } from './assignment-service';
import { displayName } from './practitioner';
import { findSpecialist, lockSpecialist, OPEN_REVIEW_STATUSES } from './specialist-repository';

/** Statuses in which a case is with a specialist who has not signed yet. */
const REASSIGNABLE: readonly string[] = OPEN_REVIEW_STATUSES;

/**
 * Statuses of a signed report that may still be amended (`opinion-service.ts`): reassigned only
 * when their specialist, the report's author, is inactive (see above).
 */
const SIGNED_AMENDABLE: readonly string[] = ['report_signed', 'delivered'];

/**
 * The assignment a hand-over takes the case from: the current one (`current: true`, ended by the
 * hand-over), or the one the case was released from (`current: false`, ended already).
 */
export interface PreviousAssignment {
  readonly assignment: AssignmentRecord;
  readonly current: boolean;
}

/** A hand-over of `record` from `from` to `chosen`, by `actor` at `now`, for `reason` (on the timeline). */
export interface HandOver {
  readonly record: CaseRecord;
  readonly from: PreviousAssignment;
  readonly chosen: ChosenSpecialist;
  readonly reason: string;
  readonly actor: Principal;
  readonly now: Date;
}

/** "Dr. Given Family" of the specialist `specialistId`, or `fallback` when the directory lost them. */
async function specialistName(db: Queryable, specialistId: string, fallback: string): Promise<string> {
  const specialist = await findSpecialist(db, specialistId);
  return specialist ? displayName(specialist) : fallback;
}

/**
 * Whether the case is signed (report_signed, delivered) and its current specialist, the author, was
 * deactivated: nobody could amend it otherwise. Their row is locked `FOR SHARE` (case, then
 * specialist, as assignments lock), so a reactivation waits for the hand-over, or is seen here.
 */
async function signedByInactiveAuthor(db: Queryable, record: CaseRecord, current: AssignmentRecord): Promise<boolean> {
  if (!SIGNED_AMENDABLE.includes(record.status)) return false;
  const author = await lockSpecialist(db, current.specialistId);
  return author !== undefined && !author.active;
}

/**
 * The assignment a reassignment of `record` takes the case from (call under the case row lock).
 * @throws HttpProblem 409 when the case is not with a specialist (nor released), or its report is
 *   signed and its author still active (or it is closed)
 */
async function requireReassignable(db: Queryable, record: CaseRecord): Promise<PreviousAssignment> {
  const current = await findCurrentAssignment(db, record.id);
  if (REASSIGNABLE.includes(record.status)) {
    if (current) return { assignment: current, current: true };
    const released = await findReleasedAssignment(db, record.id);
    if (released) return { assignment: released, current: false };
  }
  if (current && (await signedByInactiveAuthor(db, record, current))) return { assignment: current, current: true };
  throw conflict(notReassignable(record, current !== undefined), { currentStatus: record.status });
}

/** Why the case is not reassigned (its author active, or it is not with a specialist). */
function notReassignable(record: CaseRecord, assigned: boolean): string {
  if (SIGNED_AMENDABLE.includes(record.status)) return `The case is ${record.status}: its report is signed, and a correction is made by its author, so it is not reassigned.`;
  if (record.status === 'closed') return 'The case is closed: its report was signed and the case ended, so it is not reassigned.';
  return `The case is ${record.status}${assigned ? '' : ' and not assigned'}: only a case with a specialist (assigned, in_review, awaiting_information) is reassigned; assign it first (POST /api/cases/${record.id}/assignment).`;
}

/**
 * Hands the case over in the caller's transaction `tx` (case row locked): ends the previous
 * assignment when it is current, starts the chosen specialist's, and records a `reassigned` event
 * naming both and the reason.
 * @returns the new assignment
 */
export async function handOverCase(tx: Queryable, handOver: HandOver): Promise<AssignmentRecord> {
  const { record, from, chosen, reason, actor, now } = handOver;
  const { specialist, specialty } = chosen;
  const previousName = await specialistName(tx, from.assignment.specialistId, 'the previous specialist');
  const row = newAssignment(record.id, chosen, actor, now);
  if (from.current) await endAssignment(tx, from.assignment.id, now);
  await insertAssignment(tx, row);
  await insertCaseEvent(tx, {
    caseId: record.id,
    at: now,
    type: 'reassigned',
    actorSub: actor.sub,
    actorRole: primaryRole(actor),
    reason: `Reassigned from ${previousName} to ${displayName(specialist)}${specialty ? `, best match in ${specialty.display}` : ''}: ${reason}`,
    data: {
      assignmentId: row.id,
      specialistId: specialist.id,
      previousAssignmentId: from.assignment.id,
      previousSpecialistId: from.assignment.specialistId,
      method: row.method,
      ...(specialty ? { specialty: specialty.code } : {}),
    },
  });
  return row;
}

/**
 * Releases the case's current assignment in the caller's transaction `tx` (case row locked) when no
 * other specialist can take it: the assignment ends, the case keeps its status (and SLA, requests,
 * draft) and waits for a case manager to give it to a specialist; an `assignment_released` event
 * says from whom and why.
 */
export async function releaseAssignment(tx: Queryable, release: { assignment: AssignmentRecord; reason: string; actor: Principal; now: Date }): Promise<void> {
  const { assignment, reason, actor, now } = release;
  const previousName = await specialistName(tx, assignment.specialistId, 'the specialist');
  await endAssignment(tx, assignment.id, now);
  await insertCaseEvent(tx, {
    caseId: assignment.caseId,
    at: now,
    type: 'assignment_released',
    actorSub: actor.sub,
    actorRole: primaryRole(actor),
    reason: `Released from ${previousName}, no other active specialist fits: ${reason}`,
    data: { previousAssignmentId: assignment.id, previousSpecialistId: assignment.specialistId },
  });
}

/**
 * 409 unless `fromAssignmentId` (when the request names it) is the assignment the hand-over takes
 * the case from: the request was made for an assignment that another reassignment (a double submit,
 * a retry, a second case manager) has replaced since.
 */
function requireExpectedAssignment(from: PreviousAssignment, fromAssignmentId: string | undefined): void {
  if (fromAssignmentId === undefined || fromAssignmentId === from.assignment.id) return;
  const detail = from.current
    ? `The case's current assignment is ${from.assignment.id}, not ${fromAssignmentId}: it was reassigned meanwhile. Read it again (GET /api/cases/:id/assignment) before reassigning it.`
    : `The case is not assigned (released from assignment ${from.assignment.id}), not with assignment ${fromAssignmentId}. Read it again before reassigning it.`;
  throw conflict(detail, {
    field: 'fromAssignmentId',
    currentAssignmentId: from.current ? from.assignment.id : null,
    currentSpecialistId: from.current ? from.assignment.specialistId : null,
  });
}

/**
 * Moves the case's assignment to the specialist `request` names, or to the best match other than
 * the one assigned now and those it was reassigned away from before; a released case (see above)
 * goes to the one named or the best match, and so does a signed case whose author was deactivated.
 * With `fromAssignmentId` (optional: the assignment the caller read and means to replace), refused
 * when the case's assignment is another one by now.
 * @throws HttpProblem 409 when `fromAssignmentId` is not the assignment the case would be taken
 *   from (`field: fromAssignmentId`), when the case is not with a specialist (or the report is signed and its
 *   author active, or the case is closed), when
 *   the named specialist is the current one, inactive or the referring physician, or when no other
 *   specialist fits; 404 for an unknown specialist
 */
export async function reassignCase(
  deps: CaseServiceDeps,
  caseId: string,
  request: AssignmentRequest,
  reason: string,
  actor: Principal,
  fromAssignmentId?: string,
): Promise<AssignmentView> {
  const now = nowOf(deps);
  const assignment = await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true);
    const from = await requireReassignable(tx, record);
    requireExpectedAssignment(from, fromAssignmentId);
    const chosen = await chooseSpecialist(deps, tx, record, request, from.current ? from.assignment.specialistId : undefined);
    return handOverCase(tx, { record, from, chosen, reason, actor, now });
  });
  logger.info('case reassigned', { caseId, userId: assignment.specialistId, method: assignment.method });
  return assignmentView(deps, assignment);
}
