import { randomUUID } from 'node:crypto';
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import { CASE_ROW_LOCK, findCase, insertCaseEvent } from '../db/case-repository';
import type { Database, Queryable } from '../db/database';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import type { EndpointClients } from '../endpoints/endpoint-clients';
import { findEndpoint, type EndpointRow } from '../endpoints/endpoint-repository';
import type { Principal } from '../http/auth';
import { conflict, notFound } from '../http/problem';
import { errorFields, logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';
import { withTimeout } from '../util/with-timeout';
import type { PullFlowProducer } from '../../queues/pull-flow';
import { requireSomeR4Source } from './fhir-version-gate';
import { planPull } from './pull-plan';
import { pullProgress } from './pull-progress';
import {
  bumpPullAttempt, cancelPulls, findPull, insertPull, insertTask, lastCompletedQueries, pendingAttachmentsOf, requeueFailedTasks, resetFailedAttachments, tasksOfPull,
  type NewAttachment, type PullRow,
} from './pull-repository';
import { pullUnderWay } from './pull-under-way';
import { listSources } from './source-repository';

export interface PullServiceDeps extends CaseServiceDeps {
  readonly db: Database;
  readonly pulls: PullFlowProducer;
  /** The endpoints' clients, and the secrets their registrations are sealed with: the SMART scope each EHR granted, for the plan ({@link grantedScopes}). */
  readonly clients: EndpointClients;
  readonly secrets: SecretBox;
}

/** Statuses in which a pull may start; entering one from here moves the case to collecting_records. */
const PULLABLE: readonly string[] = ['submitted', 'collecting_records', 'records_complete', 'in_review', 'awaiting_information', 'assigned'];
const STARTS_COLLECTING: readonly string[] = ['submitted', 'records_complete'];

const SYSTEM_PULL: Principal = { sub: 'system:pull', roles: [] };

/** The 409 of a pull started or retried on a case whose status allows none (ended, or past its records). */
const cannotPull = (status: string) => conflict(`A case in status ${status} cannot start a record pull.`, { status });

/**
 * Locks the case row for the rest of the transaction (`CASE_ROW_LOCK`) and checks, under that lock,
 * that its status still allows a pull: a case ending at the same time (which cancels its unfinished
 * pulls under the same lock) is waited for, and no pull is queued for it after that.
 * @returns the case's status, read under the lock
 * @throws HttpProblem 404 when the case is gone, 409 when its status allows no pull
 */
async function lockPullableCase(tx: Queryable, caseId: string): Promise<string> {
  const { rows } = await tx.query<{ status: string }>(`SELECT status FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`, [caseId]);
  const status = rows[0]?.status;
  if (status === undefined) throw notFound(`Case ${caseId}`);
  if (!PULLABLE.includes(status)) throw cannotPull(status);
  return status;
}

/**
 * Moves the case to `collecting_records` in the pull's transaction (its row locked by
 * {@link lockPullableCase}): the pull and the move commit together or not at all. A pull committed
 * without the move would leave a `submitted` case there for good (the pull's end moves only a case
 * in `collecting_records` on), and a retried `records_complete` case with its old SLA clock.
 */
async function moveToCollecting(deps: PullServiceDeps, tx: Queryable, caseId: string, reason: string, actor: Principal): Promise<void> {
  await transitionCase(deps, tx, { id: caseId, to: 'collecting_records', reason, actor, now: deps.now?.() ?? new Date() });
}

/** How long a pull's start waits for an EHR's token endpoint to say what it grants before planning without it. */
const SCOPE_WAIT_MS = 5000;

/**
 * Per endpoint of `sources` (by id and registration version, `updated_at`), the SMART scope its EHR
 * granted this client (`FhirEndpointClient.grantedScope`: cached with the token; a token is obtained
 * now when none is cached, as the pull's first request would). Left out where no SMART scope applies,
 * or where it could not be learnt within {@link SCOPE_WAIT_MS} (the token endpoint down, the endpoint
 * paused, its registration refused): that source's plan asks for every type, and its queries meet what
 * the token endpoint answers then (a 403 of a type not granted is said as such: not-granted.ts).
 * Read before the pull's transaction: no row lock is held while an EHR answers.
 */
async function grantedScopes(deps: PullServiceDeps, sources: readonly { readonly endpointId: string }[]): Promise<Map<string, string>> {
  const scopes = new Map<string, string>();
  await Promise.all(
    [...(await endpointsOf(deps.db, sources)).values()].map(async (endpoint) => {
      if (!endpoint) return;
      try {
        const asked = deps.clients.forEndpoint(endpoint, deps.secrets).grantedScope();
        const scope = await withTimeout(asked, SCOPE_WAIT_MS, () => new Error(`the EHR's token endpoint did not answer within ${SCOPE_WAIT_MS} ms`));
        if (scope !== undefined) scopes.set(scopeKey(endpoint), scope);
      } catch (err) {
        logger.warn('granted SMART scope not known: the pull asks the source for every type', { endpointId: endpoint.id, ...errorFields(err) });
      }
    }),
  );
  return scopes;
}

/** An endpoint registration's key in {@link grantedScopes}: a scope learnt for an earlier registration does not count. */
const scopeKey = (endpoint: EndpointRow): string => `${endpoint.id}|${endpoint.updatedAt.toISOString()}`;

/** The endpoints of `sources`, each read once, by id (undefined: deleted meanwhile). */
async function endpointsOf(tx: Queryable, sources: readonly { readonly endpointId: string }[]): Promise<Map<string, EndpointRow | undefined>> {
  const ids = [...new Set(sources.map((s) => s.endpointId))];
  const rows = await Promise.all(ids.map((id) => findEndpoint(tx, id)));
  return new Map(ids.map((id, i) => [id, rows[i]]));
}

/**
 * Enqueues the flow; if Redis does not answer the pull stays `queued` in Postgres and the
 * reconciler enqueues it when Redis is back (nothing is lost).
 */
async function enqueue(
  deps: PullServiceDeps,
  pull: { id: string; caseId: string; attempt: number },
  taskIds: string[],
  attachments: readonly NewAttachment[] = [],
): Promise<void> {
  await enqueueAfterCommit(() => deps.pulls.enqueue(pull, taskIds, attachments), { what: 'pull', sweep: 'the pull reconciler', ids: { pullId: pull.id } });
}

export interface StartPullInput {
  readonly since?: string;
  readonly types?: string[];
  /**
   * Each query only for what changed since the same query last completed for the same source and
   * patient in a pull without an explicit `since` (`lastCompletedQueries`: such a pull skipped what
   * changed before its `since`); one never completed so is pulled in full. Ignored with `since`.
   */
  readonly incremental?: boolean;
}

/**
 * What commits with a pull's start, in its transaction (the case row locked): given the id of the pull
 * started, or of the same pull found under way. It throws to start nothing.
 */
export type AlongsidePullStart = (tx: Queryable, pullId: string) => Promise<void>;

/**
 * Plans a pull over every resolved source of the case and starts its BullMQ flow (202); the same pull
 * already queued or running is answered instead (`alreadyUnderWay`, see `pull-under-way.ts`); 422
 * when none of the sources is on a server that speaks R4 (`fhir-version-gate.ts`). `alongside` is
 * written in the same transaction (a specialist's re-pull request with its pull): both or neither.
 */
export async function startPull(
  deps: PullServiceDeps,
  caseId: string,
  input: StartPullInput,
  actor: Principal,
  alongside?: AlongsidePullStart,
): Promise<{ pullId: string; state: string; tasks: number; alreadyUnderWay?: true }> {
  const record = await findCase(deps.db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  if (!PULLABLE.includes(record.status)) throw cannotPull(record.status);
  const sources = await listSources(deps.db, caseId);
  const ready = sources.filter((s) => s.state === 'resolved' && s.remotePatientId);
  if (ready.length === 0) {
    // A removed source is no source any more: it neither needs review nor counts as one.
    const waiting = sources.filter((s) => s.state !== 'removed').length;
    throw conflict(
      waiting === 0
        ? 'The case has no sources: add one with POST /api/cases/{id}/sources.'
        : `No source is ready: ${waiting} source(s) need review (choose the patient first).`,
    );
  }
  const pullId = randomUUID();
  const taskIds: string[] = [];
  let leftOut = 0;
  const since = input.since ? new Date(input.since) : null;
  const scopes = await grantedScopes(deps, ready);
  const underWay = await deps.db.transaction(async (tx) => {
    // Two requests at once start one pull: the second finds the first under way.
    const status = await lockPullableCase(tx, caseId);
    const endpoints = await endpointsOf(tx, ready);
    requireSomeR4Source(endpoints);
    const same = await pullUnderWay(tx, caseId, { since, types: input.types ?? null }, ready.map((s) => ({ sourceId: s.id, remotePatientId: s.remotePatientId ?? '' })));
    if (same) {
      await alongside?.(tx, same.id);
      return same;
    }
    await insertPull(tx, { id: pullId, caseId, since, types: input.types ?? null, requestedBy: actor.sub });
    const completed = input.incremental && !input.since ? await lastCompletedQueries(tx, caseId) : undefined;
    for (const source of ready) {
      const endpoint = endpoints.get(source.endpointId);
      const scope = endpoint ? scopes.get(scopeKey(endpoint)) : undefined;
      const queries = planPull({
        patientId: source.remotePatientId ?? '',
        capabilities: (endpoint?.capabilities as EndpointCapabilities | null) ?? null,
        since: input.since,
        ...(completed ? { sinceOf: (key: string) => completed.get(`${source.id}|${key}|${source.remotePatientId ?? ''}`)?.toISOString() } : {}),
        types: input.types,
        ...(scope !== undefined ? { scope } : {}),
      });
      for (const q of queries) {
        const id = randomUUID();
        // A query left out (a type not granted) is recorded complete with why, and not queued.
        if (q.leftOut === undefined) taskIds.push(id);
        else leftOut += 1;
        await insertTask(tx, {
          id, pullId, sourceId: source.id, resourceType: q.resourceType, queryKey: q.key, path: q.path, params: q.params, remotePatientId: source.remotePatientId,
          ...(q.leftOut !== undefined ? { leftOut: q.leftOut } : {}),
        });
      }
    }
    if (STARTS_COLLECTING.includes(status)) await moveToCollecting(deps, tx, caseId, 'Record pull started', actor);
    await alongside?.(tx, pullId);
    return undefined;
  });
  if (underWay) {
    logger.info('pull already under way', { caseId, pullId: underWay.id });
    return { pullId: underWay.id, state: underWay.state, tasks: underWay.tasks, alreadyUnderWay: true };
  }
  await enqueue(deps, { id: pullId, caseId, attempt: 1 }, taskIds);
  logger.info('pull started', { caseId, pullId, count: taskIds.length, counts: { queued: taskIds.length, leftOut } });
  return { pullId, state: 'queued', tasks: taskIds.length + leftOut };
}

async function requirePull(db: Database, caseId: string, pullId: string): Promise<PullRow> {
  const pull = await findPull(db, pullId);
  if (!pull || pull.caseId !== caseId) throw notFound(`Pull ${pullId}`);
  return pull;
}

export async function getPull(deps: PullServiceDeps, caseId: string, pullId: string) {
  return pullProgress(deps.db, await requirePull(deps.db, caseId, pullId));
}

/** States of a pull that may be retried: a complete one only for its documents that failed ({@link nothingToRetry}). */
const RETRIABLE: readonly string[] = ['partial', 'failed', 'complete'];

/** The 409 of a retry asked of a pull that is not partial, failed or complete (queued, running, cancelled). */
const notRetriable = (state: string) =>
  conflict(`Only a partial or failed pull can be retried; this one is ${state}. (A complete pull can be retried for its documents that failed.)`, { state });

/** The 409 of a retry asked of a complete pull none of whose documents failed. */
const nothingToRetry = () =>
  conflict('Only a partial or failed pull can be retried; this one is complete, and none of its documents failed to download: there is nothing to retry.', {
    state: 'complete',
  });

/**
 * Locks the pull's row for the rest of the transaction and checks, under that lock, that it may be
 * retried: retries asked at once find the first one's attempt queued (409).
 * @returns the pull's state
 * @throws HttpProblem 409 when it is not partial, failed or complete
 */
async function lockRetriablePull(tx: Queryable, pull: PullRow): Promise<string> {
  const { rows } = await tx.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1 FOR UPDATE', [pull.id]);
  const state = rows[0]?.state ?? pull.state;
  if (!RETRIABLE.includes(state)) throw notRetriable(state);
  return state;
}

/**
 * Retries only what failed: failed tasks resume from their cursors, failed attachments are fetched
 * again. A `complete` pull (every query done) is retried for its documents that failed to download
 * only: no query is asked again, their jobs alone make the retry's flow, and the case bundle is
 * assembled again once they are in, as after any retry; one with none failed has nothing to retry.
 * The pull's row is locked and its state checked again inside the transaction (the lock order of
 * `markTaskRunning` and `cancelPulls`: pull, then tasks), so retries asked at once (a double click)
 * start one attempt: the others find it queued (409), instead of starting a second attempt over the
 * same tasks, or deadlocking on their rows (500). A case that can no longer pull (it ended) is not
 * retried either, as no pull starts for it. The attempt is `queued` until its first task or
 * attachment job starts (then `running`).
 * @throws HttpProblem 404 when the case has no such pull, 409 when it is not partial, failed or
 *   complete, when it is complete with no failed document, or when the case's status allows no pull
 */
export async function retryPull(deps: PullServiceDeps, caseId: string, pullId: string) {
  const pull = await requirePull(deps.db, caseId, pullId);
  if (!RETRIABLE.includes(pull.state)) throw notRetriable(pull.state);
  const { taskIds, attachments, attempt } = await deps.db.transaction(async (tx) => {
    // A case that ended (cancelled, closed, found ineligible) pulls nothing more, retries included.
    const status = await lockPullableCase(tx, caseId);
    const state = await lockRetriablePull(tx, pull);
    const ids = await requeueFailedTasks(tx, pullId);
    // Failed attachments are fetched again: those of the tasks run again by their tasks, those of
    // completed tasks (not run again) by jobs of their own in the retry's flow.
    // Not those of a task cancelled just above, nor of one whose source was removed or re-pointed since.
    const failedDocuments = await resetFailedAttachments(tx, pullId);
    // Rolled back: the complete pull stays as it was.
    if (state === 'complete' && failedDocuments === 0) throw nothingToRetry();
    // Read back in the reconciler's order, so a flow it re-adds has the same inline batch job ids.
    const again = await pendingAttachmentsOf(tx, { completeTasksOfPull: pullId });
    const bumped = await bumpPullAttempt(tx, pullId);
    if (status === 'records_complete') await moveToCollecting(deps, tx, caseId, ids.length > 0 ? 'Retrying failed sources' : 'Retrying failed documents', SYSTEM_PULL);
    return { taskIds: ids, attachments: again, attempt: bumped };
  });
  await enqueue(deps, { id: pullId, caseId, attempt }, taskIds, attachments);
  logger.info('pull retried', { caseId, pullId, attempt, count: taskIds.length, counts: { tasks: taskIds.length, attachments: attachments.length } });
  return { pullId, state: 'queued', attempt, tasks: taskIds.length, attachments: attachments.length };
}

/**
 * Cancels a queued or running pull: it ends `cancelled` at once, each running query stops at its next
 * page (that page is not stored), queued ones never start, documents not fetched yet are not fetched,
 * and no bundle is assembled from it. What was already stored stays in the raw store (a rebuild may
 * use it). Written on the case timeline with who and why. Cancelling a cancelled pull answers it again.
 * @throws HttpProblem 409 when the pull has already ended (complete, partial or failed)
 */
export async function cancelPull(deps: PullServiceDeps, caseId: string, pullId: string, reason: string | undefined, actor: Principal) {
  const pull = await requirePull(deps.db, caseId, pullId);
  if (pull.state === 'cancelled') return pullProgress(deps.db, pull);
  if (pull.state !== 'queued' && pull.state !== 'running') throw notCancellable(pull.state);
  const why = reason ?? 'Cancelled by the case manager';
  const cancelled = await deps.db.transaction(async (tx) => {
    const done = await cancelPulls(tx, { pullId }, actor.sub, why);
    if (done.pullIds.length > 0) {
      await insertCaseEvent(tx, {
        caseId,
        type: 'pull_cancelled',
        actorSub: actor.sub,
        reason: why,
        data: { pullId, tasksCancelled: done.tasks, attachmentsNotFetched: done.attachments },
      });
    }
    return done;
  });
  const now = await requirePull(deps.db, caseId, pullId);
  if (cancelled.pullIds.length === 0) {
    // Ended meanwhile (its last task finished first): not cancelled, so not a 200 that reads as
    // cancelled; cancelled meanwhile by someone else: the same answer as cancelling it again.
    if (now.state !== 'cancelled') throw notCancellable(now.state);
    return pullProgress(deps.db, now);
  }
  logger.info('pull cancelled', { caseId, pullId, counts: { tasks: cancelled.tasks, attachments: cancelled.attachments } });
  return pullProgress(deps.db, now);
}

/** The 409 of a cancel asked of a pull that has ended (complete, partial or failed). */
function notCancellable(state: string) {
  return conflict(`Only a queued or running pull can be cancelled; this one is ${state}.`, { state });
}

/** Every task of every unfinished pull, for the reconciler. */
export async function tasksToEnqueue(db: Database, pull: PullRow): Promise<string[]> {
  return (await tasksOfPull(db, pull.id)).filter((t) => t.state !== 'complete' && t.state !== 'cancelled').map((t) => t.id);
}
