/**
 * The specialist asks for more (`POST /api/cases/:id/information-requests`):
 * - `re-pull`: an incremental pull of chosen resource types, `_since` the start of the case's last
 *   finished pull; answered on its own when that pull completes and its records are assembled;
 * - `family-upload`: a message for the case manager to pass to the family;
 * - `expert-input`: another expert's review (radiology, pathology), offered to the family as an
 *   add-on; answered when the family approves or declines it.
 * While any request is open the case is `awaiting_information` and the SLA clock is paused; the
 * case manager can answer any request explicitly.
 *
 * An `Idempotency-Key` is scoped to (case, caller `sub`, key), see {@link informationRequestKeyScope}:
 * a resend by the same caller answers their first request again; another caller using the same key
 * on the case makes a request of their own.
 *
 * Requests outlive their asker: when the specialist is deactivated (or the case reassigned) the open
 * requests stay with the case, open, and are answered as before for the specialist who takes over.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { createOnce, keyReused } from '../http/idempotency-key';
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import type { AddOnCode } from '../cases/prices';
import { insertCaseEvent } from '../db/case-repository';
import type { Queryable } from '../db/database';
import type { Principal } from '../http/auth';
import { CASE_WAITS_FOR_SPECIALIST, INACTIVE_SPECIALIST_ACCOUNT } from '../http/case-access';
import { conflict, HttpProblem, notFound } from '../http/problem';
import { logger } from '../log';
import { offerAddOnInTx } from '../billing/addon-service';
import { caseFor, nowOf } from '../billing/billing-deps';
import { startPull, type PullServiceDeps } from '../pull/pull-service';
import { findCurrentAssignment, findReleasedAssignment } from './assignment-repository';
import { answerRequestInTx, answerRequestsOfAssembledPull } from './information-request-answers';
import {
  findInformationRequest,
  insertInformationRequest,
  listInformationRequests,
  type InformationRequestRecord,
} from './information-request-repository';
import type { InformationRequestBody } from './information-request-schema';
import { findSpecialist, findSpecialistBySubject, lockSpecialist } from './specialist-repository';

/** Statuses in which the specialist may ask for more. */
const REVIEWING: readonly string[] = ['assigned', 'in_review', 'awaiting_information'];

/** A request as the API shows it. */
export function informationRequestView(r: InformationRequestRecord) {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    message: r.message ?? undefined,
    resourceTypes: r.resourceTypes ?? undefined,
    since: r.since?.toISOString(),
    pullId: r.pullId ?? undefined,
    addOn: r.addOn ?? undefined,
    requestedBy: r.requestedBy,
    requestedAt: r.requestedAt.toISOString(),
    answeredBy: r.answeredBy ?? undefined,
    answeredAt: r.answeredAt?.toISOString(),
    answer: r.answer ?? undefined,
  };
}

/** The view type of a request. */
export type InformationRequestView = ReturnType<typeof informationRequestView>;

/**
 * The scope of an `Idempotency-Key` for information requests of `caseId` sent by `subject` (the
 * token's `sub`): keys of two callers, or of two cases, never meet. The subject is URI-encoded so
 * that no `:` in it can make two (subject, key) pairs read alike.
 */
export function informationRequestKeyScope(caseId: string, subject: string): string {
  return `information-request:${caseId}:${encodeURIComponent(subject)}`;
}

/**
 * 403 unless the caller may ask as the assigned specialist: when the directory binds the assigned
 * specialist to a token subject, only that subject; when it binds none, any specialist except one
 * the directory binds to another specialist (such as the one the case was reassigned from), as for
 * writing the opinion (`opinion/assigned-specialist.ts`). Never a specialist the directory has
 * deactivated (403), nor for a case whose specialist was deactivated and that waits for a new one (409).
 *
 * `forShare` (in the transaction that records the request, case row locked): the assigned
 * specialist's row is locked `FOR SHARE` until it ends (case, then specialist, as assignments lock),
 * so a deactivation committed meanwhile is seen here, and one sent later waits for the commit and
 * then releases the case with its requests; a plain read would let a request be recorded for a
 * specialist deactivated between the check and the commit.
 */
async function requireAssignedSpecialist(db: Queryable, caseId: string, actor: Principal, forShare = false): Promise<void> {
  const caller = await findSpecialistBySubject(db, actor.sub);
  if (caller && !caller.active) throw new HttpProblem(403, 'Forbidden', INACTIVE_SPECIALIST_ACCOUNT);
  const assignment = await findCurrentAssignment(db, caseId);
  if (!assignment && (await findReleasedAssignment(db, caseId))) throw conflict(CASE_WAITS_FOR_SPECIALIST);
  const specialist = assignment ? await (forShare ? lockSpecialist : findSpecialist)(db, assignment.specialistId) : undefined;
  if (!specialist) return;
  if (!specialist.active) throw conflict(CASE_WAITS_FOR_SPECIALIST);
  if (specialist.userSub ? specialist.userSub !== actor.sub : caller !== undefined) {
    throw new HttpProblem(403, 'Forbidden', 'Only the specialist assigned to this case can ask for more information.');
  }
}

/**
 * Records the request, pauses the SLA clock (case → `awaiting_information`, through `in_review`
 * when the review had not started) and, for a re-pull, starts the pull.
 * @throws HttpProblem 409 when the case is not under review, a re-pull cannot start (no source
 *   ready) or the add-on is already approved; 403 for another specialist
 */
export async function createInformationRequest(
  deps: PullServiceDeps,
  caseId: string,
  body: InformationRequestBody,
  actor: Principal,
  keyedId?: string,
): Promise<InformationRequestView & { replayed: boolean }> {
  const { value, replayed } = await createOnce(keyedId, (id) => requestedAs(deps, caseId, id, body), () => newInformationRequest(deps, caseId, body, actor, keyedId ?? randomUUID()));
  return { ...value, replayed };
}

/** The request made under `id` for the case, if any; 422 when it was made from another request body. */
async function requestedAs(deps: PullServiceDeps, caseId: string, id: string, body: InformationRequestBody): Promise<InformationRequestView | undefined> {
  const found = await findInformationRequest(deps.db, id);
  if (!found || found.caseId !== caseId) return undefined;
  const same =
    found.kind === body.kind &&
    (found.message ?? undefined) === ('message' in body ? body.message : undefined) &&
    (found.addOn ?? undefined) === ('addOn' in body ? body.addOn : undefined) &&
    JSON.stringify(found.resourceTypes ?? null) === JSON.stringify('resourceTypes' in body ? body.resourceTypes : null);
  if (!same) throw keyReused('information request');
  return informationRequestView(found);
}

/** 409: the family approved `addOn` already, so there is nothing to ask them for. */
function alreadyApproved(addOn: AddOnCode): HttpProblem {
  return conflict(`The family already approved ${addOn}; the expert's review is part of the case, nothing to ask for.`, { field: 'addOn' });
}

async function newInformationRequest(deps: PullServiceDeps, caseId: string, body: InformationRequestBody, actor: Principal, id: string): Promise<InformationRequestView> {
  const record = await caseFor(deps.db, caseId, false);
  if (!REVIEWING.includes(record.status)) {
    throw conflict(`Information can be requested only while the case is under review (assigned, in_review or awaiting_information); it is ${record.status}.`, {
      currentStatus: record.status,
    });
  }
  await requireAssignedSpecialist(deps.db, caseId, actor);
  if (body.kind === 'expert-input' && record.addonsApproved.includes(body.addOn)) throw alreadyApproved(body.addOn);
  const now = nowOf(deps);
  const recordRequest = async (tx: Queryable, pullId: string | null): Promise<void> => {
    const locked = await caseFor(tx, caseId, true);
    if (!REVIEWING.includes(locked.status)) throw conflict(`The case moved to ${locked.status} meanwhile; read it again.`, { currentStatus: locked.status });
    // Again under the case row lock: the case may have been reassigned since the first check.
    await requireAssignedSpecialist(tx, caseId, actor, true);
    const addOn: AddOnCode | null = body.kind === 'expert-input' ? body.addOn : null;
    // Again under the case row lock: the family's approval may have been recorded since the first
    // check. A request for an approved add-on would never be answered (the approval that answers
    // expert-input requests is behind it) and would keep the SLA clock paused.
    if (addOn && locked.addonsApproved.includes(addOn)) throw alreadyApproved(addOn);
    if (addOn) {
      await offerAddOnInTx(deps, tx, locked, { addOn, reason: 'The specialist asked for this expert review.', actor, now, data: { requestId: id } });
    }
    await insertInformationRequest(tx, {
      id,
      caseId,
      kind: body.kind,
      message: body.message ?? null,
      resourceTypes: body.kind === 're-pull' ? body.resourceTypes : null,
      // Each query of the re-pull has its own since (when it last completed): no one instant.
      since: null,
      pullId,
      addOn,
      requestedBy: actor.sub,
      requestedAt: now,
    });
    await insertCaseEvent(tx, {
      caseId,
      type: 'information_requested',
      actorSub: actor.sub,
      actorRole: actor.roles[0],
      at: now,
      data: { requestId: id, kind: body.kind, resourceTypes: body.kind === 're-pull' ? body.resourceTypes : undefined, pullId: pullId ?? undefined, addOn: addOn ?? undefined },
    });
    let status = locked.status;
    if (status === 'assigned') {
      await transitionCase(deps, tx, { id: caseId, to: 'in_review', reason: 'The specialist started the review.', actor, now });
      status = 'in_review';
    }
    if (status === 'in_review') {
      await transitionCase(deps, tx, {
        id: caseId,
        to: 'awaiting_information',
        reason: `The specialist asked for more information (${body.kind}); the SLA clock is paused.`,
        actor,
        now,
        data: { requestId: id },
      });
    }
  };
  let pullId: string | null = null;
  if (body.kind === 're-pull') {
    // Each query from when it last completed for that source and patient (a type, source or patient
    // the last pull did not cover is pulled in full). The pull and the request commit together: a
    // request refused under the lock (the case reassigned or moved meanwhile) starts no pull, and a
    // pull never runs without the request it answers (the SLA clock paused, the timeline told).
    pullId = (await startPull(deps, caseId, { incremental: true, types: body.resourceTypes }, actor, (tx, started) => recordRequest(tx, started))).pullId;
  } else {
    await deps.db.transaction((tx) => recordRequest(tx, null));
  }
  // A re-pull already under way (the same pull, `alreadyUnderWay`) that ended and was assembled before
  // the request was committed found nothing to answer: answer now.
  if (pullId) await answerRequestsOfAssembledPull(deps, pullId, nowOf(deps));
  logger.info('information requested', { caseId, pullId: pullId ?? undefined, event: body.kind });
  const created = await findInformationRequest(deps.db, id);
  if (!created) throw new Error('information request vanished after its transaction');
  return informationRequestView(created);
}

/**
 * The case manager answers a request; the last open answer resumes the review.
 * @throws HttpProblem 404 for an unknown request, 409 when it was answered already or the case is no
 *   longer under review (cancelled, closed…)
 */
export async function answerInformationRequest(
  deps: CaseServiceDeps,
  caseId: string,
  requestId: string,
  answer: string,
  actor: Principal,
): Promise<InformationRequestView> {
  const now = nowOf(deps);
  await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true);
    const request = await findInformationRequest(tx, requestId);
    if (!request || request.caseId !== caseId) throw notFound(`Information request ${requestId}`);
    if (request.state !== 'open') {
      throw conflict(request.state === 'withdrawn' ? 'The request was withdrawn when its case ended.' : 'The request was answered already.', {
        state: request.state,
        answeredAt: request.answeredAt?.toISOString(),
      });
    }
    // A case that left the review (cancelled, closed…) has no review to resume: nothing is received for it.
    if (!REVIEWING.includes(record.status)) {
      throw conflict(`The case is ${record.status}: information requests are answered only while it is under review (assigned, in_review or awaiting_information).`, {
        currentStatus: record.status,
      });
    }
    await answerRequestInTx(deps, tx, { request, answer, actor, now });
  });
  logger.info('information request answered', { caseId });
  const updated = await findInformationRequest(deps.db, requestId);
  if (!updated) throw notFound(`Information request ${requestId}`);
  return informationRequestView(updated);
}

/** The case's information requests, oldest first. */
export async function getInformationRequests(deps: CaseServiceDeps, caseId: string): Promise<InformationRequestView[]> {
  await caseFor(deps.db, caseId, false);
  return (await listInformationRequests(deps.db, caseId)).map(informationRequestView);
}
