import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Bundle } from 'fhir/r4';
import type { Config } from '../config';
import type { Database, Queryable } from '../db/database';
import { cancelUnsentDeliveries, inDoubtDeliveriesOfCase, supersedeUnsentDeliveries } from '../delivery/delivery-repository';
import {
  findCase,
  findPossibleDuplicates,
  insertCase,
  insertCaseEvent,
  listCaseEvents,
  listCases,
  listPauses,
  listPausesOfCases,
  closePause,
  openPause,
  statusEnteredAt,
  updateCaseStatus,
  type CaseEventRecord,
  SLA_OVERDUE_STATUSES,
  type CaseRecord,
  type PossibleDuplicate,
} from '../db/case-repository';
import { primaryRole, type Principal } from '../http/auth';
import { openInformationRequests, withdrawOpenRequests } from '../review/information-request-repository';
import { findCurrentAssignment } from '../review/assignment-repository';
import { lockSpecialist } from '../review/specialist-repository';
import { announceAwaitingAssignment } from '../review/awaiting-assignment';
import { createOnce, keyReused } from '../http/idempotency-key';
import { conflict, HttpProblem, notFound } from '../http/problem';
import { logger } from '../log';
import { recordEvent } from '../notify/events';
import { cancelPulls } from '../pull/pull-repository';
import type { DomainData } from './domain-data';
import { evaluateEligibility } from './eligibility';
import { buildCaseFhirBundle } from './fhir-face';
import type { Intake } from './intake-schema';
import { assertTransition, endedWithoutReport, IllegalTransitionError, isTerminal, type CaseStatus } from './lifecycle';
import { transitionsFrom, workflowTo } from './workflow-transitions';
import { computeQuote } from './pricing';
import { refuseRecordsCompleteBeforeBundle } from './records-complete-readiness';
import { recordSlaMisses } from './sla-misses';
import { computeSla, type SlaState } from './sla';
import { revokeCaseUploadTokens } from '../uploads/upload-tokens';

export interface CaseServiceDeps {
  readonly db: Database;
  readonly config: Pick<Config, 'programTimeZone'>;
  readonly domain: DomainData;
  /** The clock; tests pass a fixed one. */
  readonly now?: () => Date;
}

const clock = (deps: CaseServiceDeps): Date => (deps.now ?? (() => new Date()))();

/** What POST /api/cases answers. */
export interface CreatedCase {
  readonly id: string;
  readonly status: CaseStatus;
  /**
   * The decision, and the `version` of `mappings/eligibility.json` it was made by (`rulesVersion`:
   * absent on cases opened before it was recorded), so a refusal can be explained later by the rules
   * that made it.
   */
  readonly eligibility: { eligible: boolean; reasons: string[]; reasonCodes: string[]; rulesVersion?: string };
  readonly quote: unknown;
  /** Open cases that may be about the same child (same names and birth date): the request entered twice? */
  readonly possibleDuplicates: readonly PossibleDuplicate[];
}

/**
 * Opens a case from an intake: evaluates eligibility, prices the quote, stores the case and the
 * first timeline event. An ineligible request is still recorded (status `ineligible`) with its
 * reasons, so the case manager can answer the family.
 */
export async function openCase(deps: CaseServiceDeps, intake: Intake, actor: Principal, keyedId?: string): Promise<CreatedCase & { replayed: boolean }> {
  const { value, replayed } = await createOnce(
    keyedId,
    (id) => replayOf(deps, id, intake),
    async () => {
      const created = await insertNewCase(deps, intake, actor, keyedId ?? randomUUID());
      return { ...created, possibleDuplicates: await findPossibleDuplicates(deps.db, childOf(intake), created.id) };
    },
  );
  return { ...value, replayed };
}

/** The child's names and birth date, as possible duplicates are looked up by. */
const childOf = (intake: Intake) => ({ ...intake.patient.name, birthDate: intake.patient.birthDate });

/**
 * The case a request with this `Idempotency-Key` opened already, answered again (its intake must be
 * the same: a key reused for another intake is refused, 422).
 */
async function replayOf(deps: CaseServiceDeps, id: string, intake: Intake): Promise<CreatedCase | undefined> {
  const existing = await findCase(deps.db, id);
  if (!existing) return undefined;
  if (!isDeepStrictEqual(existing.intake, JSON.parse(JSON.stringify(intake)))) throw keyReused('intake');
  const eligibility = existing.eligibility as CreatedCase['eligibility'];
  const possibleDuplicates = await findPossibleDuplicates(deps.db, childOf(intake), id);
  return { id, status: eligibility.eligible ? 'submitted' : 'ineligible', eligibility, quote: existing.quote, possibleDuplicates };
}

async function insertNewCase(deps: CaseServiceDeps, intake: Intake, actor: Principal, id: string): Promise<Omit<CreatedCase, 'possibleDuplicates'>> {
  const now = clock(deps);
  const eligibility = { ...evaluateEligibility(intake, deps.domain.eligibility, now), rulesVersion: deps.domain.eligibility.version };
  const quote = computeQuote(deps.domain.prices, { offered: [], approved: [] });
  const status: CaseStatus = eligibility.eligible ? 'submitted' : 'ineligible';
  await deps.db.transaction(async (tx) => {
    await insertCase(tx, { id, status: 'submitted', intake, eligibility, quote, createdBy: actor.sub, at: now });
    await insertCaseEvent(tx, {
      caseId: id,
      type: 'created',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      toStatus: 'submitted',
      at: now,
      data: { eligible: eligibility.eligible },
    });
    if (!eligibility.eligible) {
      assertTransition('submitted', 'ineligible');
      await updateCaseStatus(tx, id, 0, { status: 'ineligible', at: now });
      await insertCaseEvent(tx, {
        caseId: id,
        type: 'transition',
        actorSub: 'system:eligibility',
        fromStatus: 'submitted',
        toStatus: 'ineligible',
        reason: eligibility.reasons.join(' '),
        at: now,
        data: { reasonCodes: eligibility.reasonCodes },
      });
    }
  });
  logger.info('case opened', { caseId: id, state: status });
  return { id, status, eligibility, quote };
}

/** Statuses the SLA clock runs in (`awaiting_information`: paused); leaving them for another stops it. */
const SLA_CLOCK_STATUSES: ReadonlySet<string> = new Set(SLA_OVERDUE_STATUSES);

/** What a case's SLA clock does, as a state for events (ids and states only). */
export type SlaClockState = 'running' | 'paused' | 'stopped';

/**
 * The case's SLA clock: `stopped` outside its statuses, or once the report was first signed (a
 * correction does not start it again); `paused` while awaiting information; else `running`.
 */
export function slaClockState(record: Pick<CaseRecord, 'status' | 'slaStoppedAt'>): SlaClockState {
  if (!SLA_CLOCK_STATUSES.has(record.status) || record.slaStoppedAt !== null) return 'stopped';
  return record.status === 'awaiting_information' ? 'paused' : 'running';
}

/** The SLA of a case, judged now, or when its clock stopped (`stoppedAt`): a report signed on time stays on time. */
function slaOf(deps: CaseServiceDeps, record: CaseRecord, pauses: { startedAt: Date; endedAt: Date | null }[], now: Date): (SlaState & { stoppedAt?: Date }) | null {
  if (!record.recordsCompleteAt) return null;
  const stoppedAt = record.slaStoppedAt;
  const state = computeSla({
    recordsCompleteAt: record.recordsCompleteAt,
    pauses: pauses.map((p) => ({ from: p.startedAt, to: p.endedAt ?? undefined })),
    now: stoppedAt && stoppedAt < now ? stoppedAt : now,
    timeZone: deps.config.programTimeZone,
  });
  return stoppedAt ? { ...state, stoppedAt } : state;
}

function timelineView(events: CaseEventRecord[]) {
  return events.map((e) => ({
    at: e.at.toISOString(),
    type: e.type,
    actor: e.actorSub,
    actorRole: e.actorRole ?? undefined,
    from: e.fromStatus ?? undefined,
    to: e.toStatus ?? undefined,
    reason: e.reason ?? undefined,
    data: Object.keys(e.data).length > 0 ? e.data : undefined,
  }));
}

function summaryView(record: CaseRecord, sla: SlaState | null) {
  const intake = record.intake as Intake;
  return {
    id: record.id,
    status: record.status,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
    patient: { name: intake.patient.name, birthDate: intake.patient.birthDate },
    eligibility: record.eligibility,
    quote: record.quote,
    sla,
  };
}

async function requireCase(db: Queryable, id: string, forUpdate = false): Promise<CaseRecord> {
  const record = await findCase(db, id, forUpdate);
  if (!record) throw notFound(`Case ${id}`);
  return record;
}

/**
 * The case with intake, SLA, the transitions allowed next — `allowedTransitions` (by
 * `POST …/transitions`) and `workflowTransitions` (`{to, route, detail}`: only their workflow route
 * reaches them) — and the whole timeline.
 */
export async function getCaseDetail(deps: CaseServiceDeps, id: string) {
  const record = await requireCase(deps.db, id);
  const [events, pauses] = await Promise.all([listCaseEvents(deps.db, id), listPauses(deps.db, id)]);
  const sla = slaOf(deps, record, pauses, clock(deps));
  return {
    ...summaryView(record, sla),
    intake: record.intake,
    // The moves POST …/transitions makes, and apart those only a workflow route makes (workflow-transitions.ts).
    ...transitionsFrom(record.status as CaseStatus),
    timeline: timelineView(events),
  };
}

export interface CaseListQuery {
  readonly status?: string[];
  readonly overdue?: 'true' | 'false' | 'target' | 'limit';
  /** Only the cases currently assigned to this specialist (directory id). */
  readonly specialistId?: string;
  readonly limit: number;
  readonly offset: number;
}

/** Narrowing of a list beyond the case manager's query (the specialist's worklist). */
export interface CaseListScope {
  readonly assignedToSubject?: string;
  readonly order?: 'newest' | 'sla';
}

export async function listCaseSummaries(deps: CaseServiceDeps, query: CaseListQuery, scope: CaseListScope = {}) {
  const now = clock(deps);
  const { cases, total } = await listCases(deps.db, {
    status: query.status,
    overdue: query.overdue === 'true' || query.overdue === 'target' ? 'target' : query.overdue === 'limit' ? 'limit' : undefined,
    notOverdue: query.overdue === 'false',
    ...(query.specialistId !== undefined ? { assignedToSpecialist: query.specialistId } : {}),
    ...scope,
    now,
    limit: query.limit,
    offset: query.offset,
  });
  const pauses = await listPausesOfCases(deps.db, cases.map((c) => c.id));
  const items = cases.map((record) => summaryView(record, slaOf(deps, record, pauses.get(record.id) ?? [], now)));
  return { total, limit: query.limit, offset: query.offset, items };
}

/**
 * Moves a case to `to` when the lifecycle allows it (409 naming the allowed transitions when not),
 * writing a timeline event. Entering `records_complete` starts the SLA clock; entering and leaving
 * `awaiting_information` pauses and resumes it, recomputing the due dates. Back to `in_review` is
 * refused while information requests are open ({@link refuseWhileInformationRequested}), and
 * `records_complete` while a pull runs or before a current bundle exists
 * ({@link refuseRecordsCompleteBeforeBundle}).
 */
export async function changeCaseStatus(
  deps: CaseServiceDeps,
  id: string,
  to: CaseStatus,
  reason: string | undefined,
  actor: Principal,
) {
  const now = clock(deps);
  // A case that does not exist is a 404 whatever the move asked (transitionCase's locked read); then a
  // status only its workflow reaches is a 409 naming that workflow (workflow-transitions.ts).
  const workflow = workflowTo(to);
  const guard: CaseTransition['guard'] = workflow
    ? async (_tx, _id, current) => {
        throw conflict(`A case becomes ${to} only through ${workflow.route} (${workflow.detail}), not through /transitions.`, {
          to,
          currentStatus: current.status,
          ...transitionsFrom(current.status as CaseStatus),
        });
      }
    : to === 'in_review'
      ? refuseWhileInformationRequested
      : to === 'records_complete'
        ? refuseRecordsCompleteBeforeBundle
        : undefined;
  await deps.db.transaction(async (tx) => {
    await transitionCase(deps, tx, { id, to, reason, actor, now, ...(guard ? { guard } : {}) });
  });
  logger.info('case status changed', { caseId: id, to });
  return getCaseDetail(deps, id);
}

/**
 * A case manager does not move a case back to `in_review` while information requests are open: the
 * SLA stays paused while the specialist waits for what they asked, and answering the last open
 * request resumes the review (information-request-answers.ts). Checked under the case row lock.
 * @throws HttpProblem 409 naming the open requests
 */
async function refuseWhileInformationRequested(tx: Queryable, id: string): Promise<void> {
  const open = await openInformationRequests(tx, { caseId: id });
  if (open.length === 0) return;
  throw conflict(`${open.length} information request${open.length === 1 ? ' is' : 's are'} still open; answering the last one resumes the review.`, {
    openRequests: open.map((r) => r.id),
  });
}

/**
 * Whether the SLA clock runs after a move `from` → `to`, and when it stopped if not. The clock runs in
 * its statuses; leaving them stops it (a report signed, the case ended), and a stopped case has no due
 * dates to be found overdue by (lists, the SLA sweep, worklists). The turnaround ends at the first
 * signature: a correction before delivery (`report_signed → in_review`, and the statuses it passes
 * through until it is signed again) does not start the clock again, nor move the stop — a report
 * signed on time is not made late by its correction. Records complete again (another pull before
 * the review) start it anew.
 */
function slaClockAfter(record: Pick<CaseRecord, 'slaStoppedAt'>, from: CaseStatus, to: CaseStatus, now: Date): { running: boolean; slaStoppedAt: Date | null } {
  if (to === 'records_complete') return { running: true, slaStoppedAt: null };
  // In a clock status with the clock stopped: only a correction after signing brings a case there.
  const correcting = (from === 'report_signed' && to === 'in_review') || (record.slaStoppedAt !== null && SLA_CLOCK_STATUSES.has(from));
  if (SLA_CLOCK_STATUSES.has(to) && !correcting) return { running: true, slaStoppedAt: null };
  return { running: false, slaStoppedAt: record.slaStoppedAt ?? (SLA_CLOCK_STATUSES.has(from) ? now : null) };
}

/** Why the unsent deliveries of a report reopened for correction were stopped. */
export const REOPENED_FOR_CORRECTION =
  'the signed report was reopened for correction before it reached this recipient: the corrected version is delivered once it is signed';

/** One lifecycle move inside the caller's transaction (see {@link transitionCase}). */
export interface CaseTransition {
  readonly id: string;
  readonly to: CaseStatus;
  readonly reason: string | undefined;
  readonly actor: Principal;
  readonly now: Date;
  /** More facts for the timeline event (ids, codes; no PHI). */
  readonly data?: Record<string, unknown>;
  /**
   * A refusal checked under the case row lock, before the move (a 409 when the move must not happen
   * now); `current` is the locked row.
   */
  readonly guard?: (tx: Queryable, id: string, current: CaseRecord) => Promise<void>;
}

/**
 * {@link changeCaseStatus} inside a transaction the caller owns, so a capability can move the case
 * and write its own rows atomically (assignment, information requests). Locks the case row.
 * @throws HttpProblem 409 for an illegal transition or a concurrent change
 */
/**
 * The due date stored on the case row (the lists' `?overdue=`, the sweep): while the clock runs, the
 * date; while it is paused, only one already passed (a pause moves a date still ahead, so it has
 * none then, but it cannot undo a miss: the case stays overdue, as its detail says).
 */
function dueDateKept(due: Date, paused: boolean, now: Date): Date | null {
  return !paused || due.getTime() < now.getTime() ? new Date(due) : null;
}

/**
 * The 409 detail of a move the lifecycle does not allow: the moves `POST …/transitions` makes from
 * `from` (what `allowedTransitions` lists), and apart those only a workflow route makes.
 */
function illegalTransitionDetail(from: CaseStatus, to: CaseStatus): string {
  const { allowedTransitions: manual, workflowTransitions: workflows } = transitionsFrom(from);
  if (manual.length === 0 && workflows.length === 0) {
    return `A case cannot move from ${from} to ${to}: ${from} is a final status, no further transitions are allowed.`;
  }
  const byRoute = manual.length > 0 ? ` From ${from} it can move to: ${manual.join(', ')} (POST …/transitions).` : '';
  const byWorkflow = workflows.length > 0 ? ` Through its workflow: ${workflows.map((w) => `${w.to} (${w.route})`).join(', ')}.` : '';
  return `A case cannot move from ${from} to ${to}.${byRoute}${byWorkflow}`;
}

export async function transitionCase(deps: CaseServiceDeps, tx: Queryable, move: CaseTransition): Promise<void> {
  const { id, to, reason, actor, now } = move;
  const record = await requireCase(tx, id, true);
  await move.guard?.(tx, id, record);
  const from = record.status as CaseStatus;
  try {
    assertTransition(from, to);
  } catch (err) {
    if (err instanceof IllegalTransitionError) {
      throw conflict(illegalTransitionDetail(from, to), { currentStatus: from, ...transitionsFrom(from) });
    }
    throw err;
  }
  if (to === 'awaiting_information') await openPause(tx, id, now, reason ?? null);
  if (from === 'awaiting_information') await closePause(tx, id, now);
  // Records complete (again, after another pull) restarts the clock; another pull stops it.
  const recordsCompleteAt = to === 'records_complete' ? now : to === 'collecting_records' ? null : record.recordsCompleteAt;
  const pauses = await listPauses(tx, id);
  const sla = recordsCompleteAt
    ? computeSla({
        recordsCompleteAt,
        pauses: pauses.map((p) => ({ from: p.startedAt, to: p.endedAt ?? undefined })),
        now,
        timeZone: deps.config.programTimeZone,
      })
    : null;
  const { running, slaStoppedAt } = slaClockAfter(record, from, to, now);
  // A due date passed while the clock ran, not yet recorded by the sweep: recorded now, before the
  // due dates leave the row (the clock stops or pauses) or move. (Read from the locked row: no query
  // for the transitions of a case on time.)
  const passed = (due: Date | null): boolean => due !== null && due.getTime() < now.getTime();
  if (passed(record.slaTargetDue) || passed(record.slaLimitDue)) await recordSlaMisses(tx, now, deps.config.programTimeZone, id);
  const updated = await updateCaseStatus(tx, id, record.revision, {
    status: to,
    at: now,
    recordsCompleteAt,
    slaTargetDue: running && sla ? dueDateKept(sla.targetDue, sla.paused, now) : null,
    slaLimitDue: running && sla ? dueDateKept(sla.limitDue, sla.paused, now) : null,
    slaStoppedAt,
  });
  if (!updated) throw new HttpProblem(409, 'Conflict', 'The case changed at the same time; read it again and retry.');
  await insertCaseEvent(tx, {
    caseId: id,
    type: 'transition',
    actorSub: actor.sub,
    actorRole: primaryRole(actor),
    fromStatus: from,
    toStatus: to,
    reason,
    at: now,
    data: {
      ...(to === 'awaiting_information' ? { slaPaused: true } : from === 'awaiting_information' ? { slaResumed: true } : {}),
      ...move.data,
    },
  });
  if (isTerminal(to)) await cancelPullsOfEndedCase(tx, id, to, actor, now);
  // A signed report reopened for correction before it reached the chart: its unsent deliveries stop
  // (the delivery job checks again); the corrected version is delivered once signed.
  if (from === 'report_signed' && to === 'in_review') {
    await supersedeUnsentDeliveries(tx, id, REOPENED_FOR_CORRECTION, now);
    await announceIfAuthorDeactivated(tx, id, slaClockState({ status: to, slaStoppedAt }));
  }
  if (endedWithoutReport(to)) {
    await revokePortalAccess(tx, id, actor, now);
    // Nothing of the case goes into the child's chart any more (the delivery job checks again).
    await cancelUnsentDeliveries(tx, id, `the case was ${to === 'cancelled' ? 'cancelled' : 'found ineligible'}: nothing more is written into the child's chart`, now);
    await announceReportsInDoubt(tx, id, to, actor, now);
  }
}

/**
 * A case ended without a report (cancelled, ineligible) whose report a delivery may have written into
 * a chart without our knowing (its write started and its answer was lost, or it is still writing:
 * no DiagnosticReport id on record): "nothing written" would not be the truth. The case managers are
 * told (`delivery.in_doubt`, ids and versions only) in the transaction of the move, so they can check
 * the recipient's chart and have the report withdrawn there.
 */
async function announceReportsInDoubt(tx: Queryable, caseId: string, to: CaseStatus, actor: Principal, now: Date): Promise<void> {
  const inDoubt = await inDoubtDeliveriesOfCase(tx, caseId);
  if (inDoubt.length === 0) return;
  const deliveries = inDoubt.map((d) => ({ deliveryId: d.id, recipientId: d.recipientId, version: d.version, state: d.state }));
  await insertCaseEvent(tx, {
    caseId,
    type: 'delivery_in_doubt',
    actorSub: actor.sub,
    actorRole: primaryRole(actor),
    reason: `The case was ${to === 'cancelled' ? 'cancelled' : 'found ineligible'} while a report may already be in the referring EHR (its write started, its answer never came).`,
    at: now,
    data: { deliveries },
  });
  await recordEvent(tx, 'delivery.in_doubt', caseId, { caseId, status: to, versions: inDoubt.map((d) => d.version), deliveries });
}

/**
 * A signed report reopened for correction (in the transaction of the move, case row locked) whose
 * author, the case's current specialist, was deactivated since: the deactivation left the signed
 * case with its signer, so now no specialist can open it and it waits for a case manager's
 * `PUT /api/cases/:id/assignment`. The case managers (and webhook subscribers) are told
 * (`case.awaiting_assignment`: ids and states only). The specialist's row is locked `FOR SHARE`
 * (case, then specialist, as assignments lock), so a deactivation committing meanwhile is either
 * seen here or, waiting for this commit, finds the case open and releases it itself.
 */
async function announceIfAuthorDeactivated(tx: Queryable, caseId: string, slaClock: SlaClockState): Promise<void> {
  const assignment = await findCurrentAssignment(tx, caseId);
  if (!assignment) return;
  const specialist = await lockSpecialist(tx, assignment.specialistId);
  if (!specialist || specialist.active) return;
  await announceAwaitingAssignment(tx, { caseId, status: 'in_review', previousAssignmentId: assignment.id, trigger: 'report-reopened', slaClock });
}

/**
 * A cancelled (or ineligible) case ends the family portal's access at once: its upload tokens are
 * deleted in the same transaction, written on the timeline. A closed case keeps them until they
 * expire: after the report the family may still ask to transfer care through the portal.
 */
async function revokePortalAccess(tx: Queryable, caseId: string, actor: Principal, now: Date): Promise<void> {
  const tokenIds = await revokeCaseUploadTokens(tx, caseId);
  if (tokenIds.length === 0) return;
  await insertCaseEvent(tx, { caseId, type: 'upload_tokens_revoked', actorSub: actor.sub, actorRole: primaryRole(actor), at: now, data: { tokenIds } });
}

/**
 * A case that ends (cancelled, closed, ineligible) stops pulling records for it: its unfinished pulls
 * are cancelled in the same transaction (see `cancelPulls`), each written on the timeline; and its
 * open information requests are withdrawn.
 */
async function cancelPullsOfEndedCase(tx: Queryable, caseId: string, status: CaseStatus, actor: Principal, now: Date): Promise<void> {
  const reason = `The case was ${status === 'ineligible' ? 'found ineligible' : status}`;
  const done = await cancelPulls(tx, { caseId }, actor.sub, reason);
  for (const pullId of done.pullIds) {
    await insertCaseEvent(tx, { caseId, type: 'pull_cancelled', actorSub: actor.sub, actorRole: primaryRole(actor), reason, at: now, data: { pullId } });
  }
  // Nor does it ask the family for anything more: its open information requests are withdrawn.
  const withdrawn = await withdrawOpenRequests(tx, caseId, actor.sub, now, `${reason}: the request is withdrawn.`);
  if (withdrawn.length > 0) {
    await insertCaseEvent(tx, { caseId, type: 'information_requests_withdrawn', actorSub: actor.sub, actorRole: primaryRole(actor), reason, at: now, data: { requestIds: withdrawn } });
  }
}

/** The case's FHIR face as a collection Bundle (urn:uuid fullUrls; references resolve inside it). */
export async function getCaseFhirBundle(deps: CaseServiceDeps, id: string): Promise<Bundle> {
  const record = await requireCase(deps.db, id);
  const eligibility = record.eligibility as { eligible: boolean };
  return buildCaseFhirBundle(
    {
      caseId: record.id,
      intake: record.intake as Intake,
      eligible: eligibility.eligible,
      status: record.status,
      // An ended case's consent ends when the case did, whatever touched its row since.
      statusSince: (await statusEnteredAt(deps.db, id, record.status)) ?? record.updatedAt,
      createdAt: record.createdAt,
      rules: deps.domain.eligibility,
    },
    clock(deps),
  );
}
