/**
 * Answering information requests: explicitly by the case manager, or on its own when what was
 * asked for arrives (the re-pull completes; the family decides on the offered add-on). When the
 * last open request of a case is answered the case returns to `in_review`, which closes the SLA
 * pause.
 * @packageDocumentation
 */
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import { findCase, insertCaseEvent } from '../db/case-repository';
import type { Queryable } from '../db/database';
import type { Principal } from '../http/auth';
import { logger } from '../log';
import { hasBundleVersion } from '../assembly/bundle-repository';
import { pullAssemblyTrigger } from '../pull/pull-progress';
import { findPull } from '../pull/pull-repository';
import { markAnswered, openInformationRequests, type InformationRequestRecord } from './information-request-repository';

/** Who answers when the service itself does. */
export const SYSTEM_ANSWER: Principal = { sub: 'system:review', roles: [] };

/**
 * Answers one open request inside the caller's transaction (the case row locked by the caller)
 * and resumes the review when no request is left open. False when it was answered already.
 */
export async function answerRequestInTx(
  deps: CaseServiceDeps,
  tx: Queryable,
  input: { request: InformationRequestRecord; answer: string; actor: Principal; now: Date },
): Promise<boolean> {
  const { request, actor, now } = input;
  if (!(await markAnswered(tx, request.id, { by: actor.sub, at: now, text: input.answer }))) return false;
  await insertCaseEvent(tx, {
    caseId: request.caseId,
    type: 'information_request_answered',
    actorSub: actor.sub,
    actorRole: actor.roles[0],
    at: now,
    data: { requestId: request.id, kind: request.kind, pullId: request.pullId ?? undefined, addOn: request.addOn ?? undefined },
  });
  const stillOpen = await openInformationRequests(tx, { caseId: request.caseId });
  const record = await findCase(tx, request.caseId);
  if (stillOpen.length === 0 && record?.status === 'awaiting_information') {
    await transitionCase(deps, tx, {
      id: request.caseId,
      to: 'in_review',
      reason: 'Every information request is answered; the review resumes.',
      actor,
      now,
      data: { requestId: request.id },
    });
  }
  return true;
}

/** Answers the case's open expert-input requests for `addOn` (the family decided on it). */
export async function answerExpertInputRequests(
  deps: CaseServiceDeps,
  tx: Queryable,
  input: { caseId: string; addOn: string; answer: string; actor: Principal; now: Date },
): Promise<number> {
  const open = await openInformationRequests(tx, { caseId: input.caseId, kind: 'expert-input', addOn: input.addOn });
  let answered = 0;
  for (const request of open) {
    if (await answerRequestInTx(deps, tx, { request, answer: input.answer, actor: input.actor, now: input.now })) answered += 1;
  }
  return answered;
}

/**
 * Called when a pull finishes: a complete pull answers the re-pull requests that started it. A
 * partial or failed pull leaves them open (the case manager retries it or answers them).
 */
export async function answerRequestsOfPull(deps: CaseServiceDeps, pullId: string, state: string, now: Date = new Date()): Promise<number> {
  if (state !== 'complete') return 0;
  const waiting = await openInformationRequests(deps.db, { pullId });
  if (waiting.length === 0) return 0;
  const answered = await deps.db.transaction(async (tx) => {
    let n = 0;
    for (const request of waiting) {
      await findCase(tx, request.caseId, true);
      if (await answerRequestInTx(deps, tx, { request, answer: 'The re-pull completed; the new records are in the case bundle.', actor: SYSTEM_ANSWER, now })) n += 1;
    }
    return n;
  });
  logger.info('information requests answered by a pull', { pullId, count: answered });
  return answered;
}

/**
 * Answers the open requests of a re-pull that ended before they were committed: the pull's parent
 * job answers them once its records are in the bundle ({@link answerRequestsOfPull} after the
 * assembly), and a request committed after the job looked would stay open. Answered here only once
 * that assembly is stored (the bundle version of the pull's attempt exists): a pull that has ended
 * but is still being assembled is left to its job, which then sees the request — "the new records
 * are in the case bundle" must be true when the review resumes.
 * @returns how many were answered
 */
export async function answerRequestsOfAssembledPull(deps: CaseServiceDeps, pullId: string, now: Date = new Date()): Promise<number> {
  const pull = await findPull(deps.db, pullId);
  if (!pull?.finishedAt) return 0;
  if (!(await hasBundleVersion(deps.db, pull.caseId, pullAssemblyTrigger(pullId, pull.attempt)))) return 0;
  return answerRequestsOfPull(deps, pullId, pull.state, now);
}
