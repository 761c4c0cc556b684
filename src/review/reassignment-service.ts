/**
 * `PUT /api/cases/:id/assignment`: gives an assigned case to another specialist — the one assigned
 * is away, conflicted, or asks to hand it over. The case keeps its status, SLA clock, information
 * requests and opinion draft; in one transaction the current assignment ends (`ended_at`), the new
 * one starts, and the timeline says who took it from whom and why. From then on the case's access
 * rules, worklists and opinion authorship follow the new assignment: the previous specialist no
 * longer reads the case, and a draft they left is signed only after the new specialist saves it as
 * their own (the signer must be the draft's author, `opinion-service.ts`).
 *
 * Not once a report is signed: a correction is made, and signed, by the report's author.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import { insertCaseEvent } from '../db/case-repository';
import { primaryRole, type Principal } from '../http/auth';
import { conflict } from '../http/problem';
import { logger } from '../log';
import { caseFor, nowOf } from '../billing/billing-deps';
import { endAssignment, findCurrentAssignment, insertAssignment } from './assignment-repository';
import { assignmentView, chooseSpecialist, newAssignment, type AssignmentRequest, type AssignmentView } from './assignment-service';
import { displayName } from './practitioner';
import { findSpecialist } from './specialist-repository';

/** Statuses in which a case is with a specialist who has not signed yet. */
const REASSIGNABLE: readonly string[] = ['assigned', 'in_review', 'awaiting_information'];

/**
 * Moves the case's assignment to the specialist `request` names, or to the best match other than
 * the one assigned now.
 * @throws HttpProblem 409 when the case is not with a specialist (or the report is signed), when
 *   the named specialist is the current one, inactive or the referring physician, or when no other
 *   specialist fits; 404 for an unknown specialist
 */
export async function reassignCase(
  deps: CaseServiceDeps,
  caseId: string,
  request: AssignmentRequest,
  reason: string,
  actor: Principal,
): Promise<AssignmentView> {
  const now = nowOf(deps);
  const assignment = await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true);
    const current = await findCurrentAssignment(tx, caseId);
    if (!REASSIGNABLE.includes(record.status) || !current) {
      throw conflict(
        record.status === 'report_signed' || record.status === 'delivered' || record.status === 'closed'
          ? `The case is ${record.status}: its report is signed, and a correction is made by its author, so it is not reassigned.`
          : `The case is ${record.status}${current ? '' : ' and not assigned'}: only a case with a specialist (assigned, in_review, awaiting_information) is reassigned; assign it first (POST /api/cases/${caseId}/assignment).`,
        { currentStatus: record.status },
      );
    }
    const chosen = await chooseSpecialist(deps, tx, record, request, current.specialistId);
    const { specialist, specialty } = chosen;
    const previous = await findSpecialist(tx, current.specialistId);
    const row = newAssignment(caseId, chosen, actor, now);
    await endAssignment(tx, current.id, now);
    await insertAssignment(tx, row);
    await insertCaseEvent(tx, {
      caseId,
      at: now,
      type: 'reassigned',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      reason: `Reassigned from ${previous ? displayName(previous) : 'the previous specialist'} to ${displayName(specialist)}${specialty ? `, best match in ${specialty.display}` : ''}: ${reason}`,
      data: {
        assignmentId: row.id,
        specialistId: specialist.id,
        previousAssignmentId: current.id,
        previousSpecialistId: current.specialistId,
        method: row.method,
        ...(specialty ? { specialty: specialty.code } : {}),
      },
    });
    return row;
  });
  logger.info('case reassigned', { caseId, userId: assignment.specialistId, method: assignment.method });
  return assignmentView(deps, assignment);
}
