/**
 * What a deactivation (`PATCH /api/specialists/:id {active: false}`) does to the specialist's cases.
 *
 * The `active` flag is committed first, on its own: from then on the specialist's token opens no
 * case (`http/case-access.ts`), is not matched nor named for a case (`assignment-service.ts`), and
 * any assignment racing the change either committed before it (and is released below) or sees the
 * specialist inactive (the row lock of `lockSpecialist`).
 *
 * Then each *open* case of theirs (assigned, in_review, awaiting_information, see
 * {@link OPEN_REVIEW_STATUSES}) is released back to matching, one transaction per case, under the
 * case row lock:
 * - handed to the best other match for its diagnosis codes (as `PUT /api/cases/:id/assignment
 *   {match: true}` would), with a `reassigned` event whose reason ends in `specialist deactivated`;
 * - or, when no other active specialist fits, released: the assignment ends and the case waits for a
 *   case manager (`assignment_released` event); it keeps its status and no specialist opens it until
 *   a case manager gives it to one with `PUT /api/cases/:id/assignment`. The case managers (and
 *   webhook subscribers) are told in the same transaction: a `case.awaiting_assignment` outbox event
 *   (ids and states only: caseId, status, previousAssignmentId, reason, trigger, slaClock), once per
 *   released assignment. It reaches them at the notify worker's next poll (`NOTIFY_POLL_MS`): the
 *   deactivation has no work dispatch to kick it with.
 *
 * Either way a case in review mid-way keeps its status, its SLA clock (running, or paused while
 * information requests are open), its information requests (still open, answered as before; the
 * new specialist sees them) and the opinion draft (signed only once the new specialist saves it as
 * their own). Signed cases (report_signed, delivered, closed) are not touched: the signed opinion
 * stays signed, the assignment stays as a record of who signed. One reopened for correction later
 * (`report_signed → in_review`) is announced the same way when it is reopened
 * (`cases/case-service.ts`, `announceIfAuthorDeactivated`).
 *
 * The release is idempotent: a case already handed over is skipped, so a deactivation interrupted
 * half-way (the process stopped) is finished by sending `PATCH {active: false}` again, or by the
 * SLA sweep's next run ({@link finishInterruptedDeactivations}), whichever comes first.
 * @packageDocumentation
 */
import { slaClockState, type CaseServiceDeps } from '../cases/case-service';
import type { CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import type { Principal } from '../http/auth';
import { HttpProblem } from '../http/problem';
import { logger } from '../log';
import { caseFor, nowOf } from '../billing/billing-deps';
import { currentlyAssignedCaseIds, findCurrentAssignment, inactiveSpecialistsHoldingCases, type AssignmentRecord } from './assignment-repository';
import { chooseSpecialist, type ChosenSpecialist } from './assignment-service';
import { announceAwaitingAssignment, SPECIALIST_DEACTIVATED } from './awaiting-assignment';
import { displayName } from './practitioner';
import { handOverCase, releaseAssignment } from './reassignment-service';
import { lockSpecialist, OPEN_REVIEW_STATUSES } from './specialist-repository';

/** What a deactivation did with one open case of the specialist. */
export interface ReleasedCase {
  readonly caseId: string;
  /** The case's status, unchanged by the release. */
  readonly status: string;
  /** `reassigned`: handed to the best other match; `awaiting_assignment`: no one fits, a case manager assigns it. */
  readonly outcome: 'reassigned' | 'awaiting_assignment';
  /** The deactivated specialist's assignment, now ended. */
  readonly previousAssignmentId: string;
  /** The new assignment (`reassigned` only). */
  readonly assignment?: {
    readonly id: string;
    readonly specialistId: string;
    readonly specialist: string;
    readonly method: 'named' | 'matched';
    readonly matchedSpecialty: string | null;
  };
}

/** The case of `record` and the deactivated specialist's assignment of it, under the case row lock. */
interface OpenCase {
  readonly record: CaseRecord;
  readonly assignment: AssignmentRecord;
}

/**
 * Releases every open case of the (inactive) specialist back to matching, oldest assignment first.
 * @returns what became of each case; empty when the specialist had none (or is active again)
 */
export async function releaseOpenCases(deps: CaseServiceDeps, specialistId: string, actor: Principal): Promise<ReleasedCase[]> {
  const released: ReleasedCase[] = [];
  for (const caseId of await currentlyAssignedCaseIds(deps.db, specialistId, OPEN_REVIEW_STATUSES)) {
    const outcome = await releaseCase(deps, caseId, specialistId, actor);
    if (!outcome) continue;
    logger.info('case released from a deactivated specialist', { caseId, state: outcome.outcome, userId: outcome.assignment?.specialistId });
    released.push(outcome);
  }
  logger.info('open cases of a deactivated specialist released', { userId: specialistId, count: released.length });
  return released;
}

/** Who releases the cases of a deactivation the sweep finishes. */
const SYSTEM_RELEASE: Principal = { sub: 'system:review', roles: [] };

/**
 * Finishes deactivations interrupted after their flag was committed (the process stopped before
 * every open case was released): each inactive specialist still holding open cases has them released
 * as `PATCH {active: false}` would. Run by the SLA sweep, so no case waits on a specialist who cannot
 * open it, with nobody told, until someone sends the PATCH again.
 * @returns the cases released, per specialist
 */
export async function finishInterruptedDeactivations(deps: CaseServiceDeps): Promise<ReleasedCase[]> {
  const released: ReleasedCase[] = [];
  for (const specialistId of await inactiveSpecialistsHoldingCases(deps.db, OPEN_REVIEW_STATUSES)) {
    for (const r of await releaseOpenCases(deps, specialistId, SYSTEM_RELEASE)) released.push(r);
  }
  if (released.length > 0) logger.warn('interrupted deactivations finished', { count: released.length });
  return released;
}

/** Releases one case in its own transaction; undefined when it is no longer the inactive specialist's open case. */
async function releaseCase(deps: CaseServiceDeps, caseId: string, specialistId: string, actor: Principal): Promise<ReleasedCase | undefined> {
  const now = nowOf(deps);
  return deps.db.transaction(async (tx) => {
    const open = await lockedOpenCase(tx, caseId, specialistId);
    if (!open) return undefined;
    const chosen = await bestOtherMatch(deps, tx, open.record, specialistId);
    if (!chosen) {
      await releaseAssignment(tx, { assignment: open.assignment, reason: SPECIALIST_DEACTIVATED, actor, now });
      const { record, assignment } = open;
      const slaClock = slaClockState(record);
      await announceAwaitingAssignment(tx, { caseId, status: record.status, previousAssignmentId: assignment.id, trigger: 'specialist-deactivated', slaClock });
      return { caseId, status: open.record.status, outcome: 'awaiting_assignment', previousAssignmentId: open.assignment.id };
    }
    const from = { assignment: open.assignment, current: true };
    const row = await handOverCase(tx, { record: open.record, from, chosen, reason: SPECIALIST_DEACTIVATED, actor, now });
    return {
      caseId,
      status: open.record.status,
      outcome: 'reassigned',
      previousAssignmentId: open.assignment.id,
      assignment: { id: row.id, specialistId: row.specialistId, specialist: displayName(chosen.specialist), method: row.method, matchedSpecialty: row.matchedSpecialty },
    };
  });
}

/**
 * The case row locked, when it is still open and currently assigned to the specialist, and the
 * specialist still inactive (a reactivation meanwhile keeps their cases); otherwise undefined.
 * Locks in the order assignments do (case, then specialist), so the two never deadlock.
 */
async function lockedOpenCase(tx: Queryable, caseId: string, specialistId: string): Promise<OpenCase | undefined> {
  const record = await caseFor(tx, caseId, true);
  if (!OPEN_REVIEW_STATUSES.includes(record.status)) return undefined;
  const assignment = await findCurrentAssignment(tx, caseId);
  if (assignment?.specialistId !== specialistId) return undefined;
  const specialist = await lockSpecialist(tx, specialistId);
  return specialist && !specialist.active ? { record, assignment } : undefined;
}

/** The best match for the case other than `specialistId`; undefined when no one fits (409 of {@link chooseSpecialist}). */
async function bestOtherMatch(deps: CaseServiceDeps, tx: Queryable, record: CaseRecord, specialistId: string): Promise<ChosenSpecialist | undefined> {
  try {
    return await chooseSpecialist(deps, tx, record, { match: true }, specialistId);
  } catch (err) {
    if (err instanceof HttpProblem && err.status === 409) return undefined;
    throw err;
  }
}
