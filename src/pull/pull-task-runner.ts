import { randomUUID } from 'node:crypto';
import { MAX_CLIENT_REPLACEMENTS } from '../endpoints/endpoint-clients';
import { requireEndpoint } from '../endpoints/endpoint-service';
import { ClientRetiredError, FhirHttpError, isPermanentFhirError, RequestNotSentError, scanSearchPage, type FhirEndpointClient, type ScannedSearchPage } from '../fhir';
import { errorFields, logger } from '../log';
import { findAttachments } from './attachments';
import { pausedMessage, waitsFor, type JobRun } from './job-run';
import type { PullWorkerDeps } from './pull-deps';
import { pageEntries, type PageEntries, type PageEntry } from './page-resources';
import { addServerMessages, type ServerIssue } from './server-messages';
import { refusedAsNotGranted } from './not-granted';
import { scopeAllows } from '../fhir/scope';
import { addOtherPatients, FOREIGN_PATIENTS_TO_STOP, ForeignPatientsError } from './foreign-patient';
import { PagingGuard, pagingLoopError } from './paging-guard';
import { expectedMatchesOf } from './expected-matches';
import { withMissingIncludes, type IncludeFollowUp } from './included-follow-up';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import { serverTimeOf } from './server-time';
import { childAtServer } from '../normalize/patient-scope';
import {
  commitPage, findPull, findTask, handTaskBack, markTaskFinished, markTaskRunning, pendingAttachmentsOf, type NewAttachment, type PageAttachment, type TaskRow,
} from './pull-repository';
import { isEverythingStream, whenRefused } from './pull-plan';
import { decideIgnoredType, typesOutsideStream } from './everything-types';
import { countingRetries, type RetryCount } from './retry-count';
import { findSourceById } from './source-repository';
import { childPatientIn, storedChildPatient } from './source-patient-page';
import { readsSourcePatient, SourcePatientReviewError } from './source-patient-standing';
import { judgeSourcePatient } from './source-review';

/**
 * How a task run ended. `handed-back`: the process began to stop (`deps.stopping`) and the run ended
 * at a page boundary, the task `queued` again at its committed cursor (`pages` committed): the job is
 * to run again, at once, elsewhere (queues/pull-source.ts).
 */
export type TaskOutcome =
  | { readonly state: 'complete'; readonly pages: number; readonly resources: number; readonly newAttachmentIds: string[] }
  | { readonly state: 'handed-back'; readonly pages: number }
  | { readonly state: 'skipped' };

/** A paging token the server no longer knows (expired snapshot): the query restarts from page one. */
const MAX_CURSOR_RESTARTS = 2;

/**
 * Runs one pull task (one query at one source) to the end of its pages. Each page and its cursor
 * are committed together, so a run that is killed resumes after its last committed page, and a run
 * that repeats a page stores nothing twice. Permanent errors (not-found, invalid…) end the task
 * `failed`; transient ones propagate so the queue retries the job. A first page refused as not
 * granted (403 `forbidden`/`security`, not-granted.ts) or, for a query the plan allows it, as not
 * supported ends it `complete` with that said ({@link firstPageRefusal}).
 *
 * When `deps.stopping` fires, the run asks for no new page: a page whose request was sent (the one
 * being read, or the next one already asked for while this one commits) is read and committed, then
 * the run ends `handed-back` at that boundary; a request still waiting for its limiter slot, token or
 * retry is withdrawn unsent (`RequestNotSentError`). So no page is stored twice, and none is asked
 * for twice by this run and the one that resumes it.
 */
export async function runPullTask(
  deps: PullWorkerDeps,
  taskId: string,
  run: JobRun,
  onAttachments: (attachments: NewAttachment[]) => Promise<void> = async () => undefined,
): Promise<TaskOutcome> {
  const { isLastAttempt } = run;
  let task = await findTask(deps.db, taskId);
  if (!task) return { state: 'skipped' };
  if (task.state === 'complete') {
    // A finished task's job runs again only when its queue lost track of it (its worker died after the
    // task was marked complete, or Redis came back from an older snapshot): the attachment jobs it added
    // may be lost as well, so those still pending are added again (a URL attachment's job id is its
    // own, so one still queued is not doubled; an inline batch fetched twice stores nothing twice).
    const pending = await pendingAttachmentsOf(deps.db, { taskId: task.id });
    if (pending.length > 0) await onAttachments(pending);
    return { state: 'skipped' };
  }
  // A cancelled task's job (its pull cancelled, its source removed or re-pointed) still runs once when it
  // was queued, delayed or waiting for a paused endpoint, and ends here.
  if (task.state === 'cancelled') return { state: 'skipped' };
  const pull = await findPull(deps.db, task.pullId);
  const source = await findSourceById(deps.db, task.sourceId);
  if (!pull || !source) return { state: 'skipped' };
  const endpointRow = await requireEndpoint(deps.db, source.endpointId);
  const counted: RetryCount = { retries: 0 };
  let client = deps.clients.forEndpoint(endpointRow, deps.secrets);
  // Times the endpoint's client was replaced under this run (its registration edited): each time the
  // query goes on with the current client, from its committed cursor.
  let replacedClients = 0;
  if (!(await markTaskRunning(deps.db, task.id))) return { state: 'skipped' };
  const { stopping } = deps;
  /**
   * Ends the run at a page boundary, the task queued again at its committed cursor (`handTaskBack`,
   * pull-repository.ts). A task cancelled meanwhile is not handed back: the run ends `skipped`, so its
   * job ends rather than being queued again to find the task cancelled.
   */
  const handBack = async (current: TaskRow): Promise<TaskOutcome> => {
    const pages = await handTaskBack(deps.db, current.id, counted.retries);
    if (pages === undefined) {
      logger.info('pull task stopped: cancelled', { pullId: current.pullId, sourceId: current.sourceId, resourceType: current.resourceType });
      return { state: 'skipped' };
    }
    return { state: 'handed-back', pages };
  };
  const newAttachmentIds: string[] = [];
  /**
   * Queues the task's attachments an earlier run committed but died before queuing (its worker killed
   * between `commitPage` and `onAttachments`): they are still `pending`, and nothing else queues them in
   * this attempt. Those this run queued are left out: their jobs are under way, and a batch of inline
   * ones has an id of its own. Run once, as the run ends (complete, or failed for good).
   */
  const enqueueOrphans = async (): Promise<void> => {
    const enqueued = new Set(newAttachmentIds);
    const orphans = (await pendingAttachmentsOf(deps.db, { taskId })).filter((r) => !enqueued.has(r.id));
    if (orphans.length > 0) await onAttachments(orphans);
  };
  let restarts = 0;
  // While a query starts over (expired paging token), the database keeps the stale cursor (and the
  // expired run's pages) until the first page of the new run commits, guarded by them: a task with
  // pages but no cursor in the database has always committed its last page, never a query about to
  // start over. That commit also starts the task's counters again (see `startsOver` in commitPage).
  let staleRun: { readonly pages: number; readonly cursor: string } | undefined;
  // The next page, requested and read (scanned, hashed, attachments found) while this one is
  // being committed, so that its round trip and this process's work on it overlap the database's;
  // used only when the commit advanced the cursor to exactly its URL.
  let prefetched: { url: string; page: Promise<PreparedPage> } | undefined;
  // Whom the query's pages were about besides the child (when the task knows the child's id there).
  const child = task.remotePatientId ? childAtServer(endpointRow.baseUrl, new Set([`Patient/${task.remotePatientId}`]), []) : undefined;
  const otherPatients = new Set<string>();
  // Whether the server's paging goes round in circles (paging-guard.ts); a query that starts over gets a new one.
  let paging = new PagingGuard();
  // Whether a page this run committed held the child's Patient (judged then: source-review.ts).
  let childPatientJudged = false;
  // What the query's `_include` should have brought and a page lacks is read before the page commits (included-follow-up.ts).
  const followUp: Omit<IncludeFollowUp, 'client'> = {
    db: deps.db,
    capabilities: (endpointRow.capabilities as EndpointCapabilities | null) ?? null,
    caseId: pull.caseId,
    sourceId: source.id,
    baseUrl: endpointRow.baseUrl,
    unreadable: new Set<string>(),
    send: (request) => countingRetries(counted, request),
  };
  /** The client was replaced meanwhile (its registration edited): true once the current one is taken, to ask again with it. */
  const tookReplacedClient = async (err: unknown): Promise<boolean> => {
    if (!(err instanceof ClientRetiredError && replacedClients < MAX_CLIENT_REPLACEMENTS)) return false;
    replacedClients += 1;
    client = deps.clients.forEndpoint(await requireEndpoint(deps.db, source.endpointId), deps.secrets);
    return true;
  };
  const withIncludesRead = async (current: TaskRow, entries: PageEntries, body: Buffer): Promise<PageEntries> => {
    for (;;) {
      try {
        return await withMissingIncludes({ ...followUp, client }, current.requestParams._include, entries, body);
      } catch (err) {
        if (!(await tookReplacedClient(err))) throw err;
      }
    }
  };
  const prepare = async (fetching: Promise<ScannedSearchPage>): Promise<PreparedPage> => {
    const page = await fetching;
    const entries = pageEntries(page);
    return { page, entries, attachments: attachmentsOf(entries.entries) };
  };
  try {
    for (;;) {
      const current: TaskRow = task;
      // Every page is committed but the task was not marked complete (its worker died, or the database
      // went away, in between): finish it instead of starting the query again from page one.
      if (current.pages > 0 && current.nextUrl === null && staleRun === undefined) break;
      let prepared: PreparedPage;
      const ahead = prefetched !== undefined && prefetched.url === current.nextUrl ? prefetched.page : undefined;
      prefetched = undefined;
      // Stopping: a page asked for already is committed first; none is asked for now.
      if (ahead === undefined && stopping?.aborted) return await handBack(current);
      try {
        prepared = await (ahead ?? prepare(countingRetries(counted, () => fetchPage(client, current, stopping))));
      } catch (err) {
        if (err instanceof RequestNotSentError) return await handBack(current);
        if (await tookReplacedClient(err)) continue;
        if (current.nextUrl && err instanceof FhirHttpError && (err.status === 404 || err.status === 410) && restarts < MAX_CURSOR_RESTARTS) {
          restarts += 1;
          // Counted from the committed run it replaces (an earlier restart in this run not committed yet keeps that one).
          staleRun ??= { pages: current.pages, cursor: current.nextUrl };
          task = startingOver(current);
          paging = new PagingGuard();
          continue;
        }
        // Refused at once: a query the plan asks only of servers that can answer it, or a type the
        // EHR did not grant this client. Said, not fatal.
        const refusal = current.pages === 0 && current.nextUrl === null && staleRun === undefined ? await firstPageRefusal(err, current, client) : undefined;
        if (refusal !== undefined) {
          await markTaskFinished(deps.db, current.id, 'complete', null, counted.retries, addServerMessages(current.serverMessages, [refusal.issue]), refusal.notGranted);
          logger.info('pull task complete: query refused by the server', {
            pullId: current.pullId, sourceId: current.sourceId, resourceType: current.resourceType, status: err instanceof FhirHttpError ? err.status : undefined, code: refusal.issue.code,
          });
          return { state: 'complete', pages: 0, resources: 0, newAttachmentIds };
        }
        throw err;
      }
      const { page, entries, attachments } = prepared;
      // A server ignoring `_type` answers every `$everything` stream with the whole record: one stream
      // asks again for everything, the others end (everything-types.ts). Judged on the query's first page.
      const outside = current.nextUrl === null ? typesOutsideStream(current, entries.entries) : [];
      if (outside.length > 0) {
        const decision = await decideIgnoredType(deps.db, current, outside);
        if (decision === undefined) return { state: 'skipped' };
        const { serverMessages } = decision;
        if (!decision.lead) {
          await markTaskFinished(deps.db, current.id, 'complete', null, counted.retries, serverMessages);
          logger.info('pull task complete: another $everything stream brings its types', { pullId: current.pullId, sourceId: current.sourceId, resourceType: current.resourceType });
          return { state: 'complete', pages: 0, resources: 0, newAttachmentIds };
        }
        task = { ...current, requestParams: decision.requestParams, resourceType: '*', serverMessages };
        logger.info('pull task asks again without _type: the server ignored it', { pullId: current.pullId, sourceId: current.sourceId });
        continue;
      }
      const expectedMatches = expectedMatchesOf(page);
      // The query's first page (of this run, when it started over): the EHR's time then is where its next incremental pull starts.
      const serverTime = current.nextUrl === null ? serverTimeOf(page) : undefined;
      // Other patients' records mean the server ignored the patient: stop before storing them (foreign-patient.ts).
      if (child) {
        addOtherPatients(otherPatients, page, entries, child, current.resourceType === 'Patient' && !current.requestPath.includes('$'));
        if (otherPatients.size >= FOREIGN_PATIENTS_TO_STOP) throw new ForeignPatientsError([...otherPatients]);
      }
      const pageNo = current.pages + 1;
      paging.admit(pageNo, current.nextUrl, entries.entries);
      const loopsBackTo = paging.loopsBackTo(page.nextUrl);
      const retriesDelta = counted.retries;
      if (page.nextUrl && loopsBackTo === undefined && !stopping?.aborted) {
        const next: TaskRow = { ...current, nextUrl: page.nextUrl };
        const ahead = prepare(countingRetries(counted, () => fetchPage(client, next, stopping)));
        // Settled or dropped later; an error here surfaces when the page is used.
        ahead.catch(() => undefined);
        prefetched = { url: page.nextUrl, page: ahead };
      }
      const stored = await withIncludesRead(current, entries, page.raw);
      // One statement: the page, its resources (with those read for its `_include`) and attachments, and the cursor (see commitPage).
      const result = await commitPage(deps.db, {
        task: current,
        caseId: pull.caseId,
        fromUrl: current.nextUrl,
        ...(staleRun !== undefined ? { startsOver: staleRun } : {}),
        pageNo,
        body: page.raw,
        fetchedAt: new Date(),
        entries: stored,
        nextUrl: page.nextUrl ?? null,
        retriesDelta,
        attachments,
        ...(expectedMatches !== undefined ? { expectedMatches } : {}),
        ...(serverTime !== undefined ? { serverTime } : {}),
      });
      staleRun = undefined;
      if (!result.committed) {
        // Another run of this task got here first (continue from what is committed), or the task was
        // cancelled meanwhile (stop: the page is not stored).
        prefetched = undefined;
        const fresh = await findTask(deps.db, current.id);
        if (!fresh || fresh.state === 'complete' || fresh.state === 'cancelled') {
          if (fresh?.state === 'cancelled') logger.info('pull task stopped: cancelled', { pullId: current.pullId, sourceId: current.sourceId, resourceType: current.resourceType });
          return { state: 'skipped' };
        }
        task = fresh;
        continue;
      }
      counted.retries -= retriesDelta;
      newAttachmentIds.push(...result.newAttachments.map((a) => a.id));
      if (result.newAttachments.length > 0) await onAttachments(result.newAttachments);
      // As commitPage counted it: each match, and each included resource the first time this run brings it.
      const pageCount = result.counted;
      task = {
        ...current,
        pages: current.pages + 1,
        resources: current.resources + pageCount.resources,
        typeCounts: pageCount.typeCounts,
        included: pageCount.included,
        serverMessages: addServerMessages(current.serverMessages, stored.serverIssues),
        nextUrl: page.nextUrl ?? null,
        expectedMatches: expectedMatches ?? current.expectedMatches,
      };
      // The child's Patient read again: merged into another record or inactive, the source goes to review and the query ends.
      const childPatient = current.remotePatientId ? childPatientIn(entries, page.raw, current.remotePatientId) : undefined;
      if (childPatient) {
        childPatientJudged = true;
        await judgeSourcePatient(deps.db, current, { caseId: pull.caseId, baseUrl: endpointRow.baseUrl }, childPatient);
      }
      if (loopsBackTo !== undefined) throw pagingLoopError(pageNo, loopsBackTo);
      if (!page.nextUrl) break;
    }
    // A run resumed after the page holding the Patient was committed (its worker died before judging it): judged from the stored pages.
    if (!childPatientJudged && task.remotePatientId && readsSourcePatient(task)) {
      const stored = await storedChildPatient(deps.db, task.id, task.remotePatientId, endpointRow.baseUrl);
      if (stored) await judgeSourcePatient(deps.db, task, { caseId: pull.caseId, baseUrl: endpointRow.baseUrl }, stored);
    }
    await enqueueOrphans();
    await markTaskFinished(deps.db, task.id, 'complete', null, counted.retries);
    logger.info('pull task complete', { pullId: task.pullId, sourceId: task.sourceId, resourceType: task.resourceType, pages: task.pages, resources: task.resources });
    return { state: 'complete', pages: task.pages, resources: task.resources, newAttachmentIds };
  } catch (err) {
    const permanent = isPermanentFhirError(err);
    const paused = waitsFor(run, err);
    const message = paused
      ? pausedMessage(err.retryAt)
      : err instanceof SourcePatientReviewError ? err.message // the source's review reason, whole (bounded: source-patient-standing.ts)
        : err instanceof Error ? err.message.slice(0, 500) : 'error';
    if (!paused && (permanent || isLastAttempt)) {
      await markTaskFinished(deps.db, task.id, 'failed', message, counted.retries);
      // No run of this attempt comes after this one to queue what an earlier run committed and left
      // unqueued. Only here, not on an error the queue retries: the next run queues them as it ends, so
      // each is queued once. Not queued (Redis down too), they fail as the pull ends, and a retry fetches them.
      await enqueueOrphans().catch((e: unknown) => logger.warn('pending documents of a failed task not queued', { pullId: pull.id, ...errorFields(e) }));
    } else {
      await deps.db.query("UPDATE pull_tasks SET last_error = $2, retries = retries + $3, waiting_until = $4, updated_at = now() WHERE id = $1 AND state <> 'cancelled'", [
        task.id, message, counted.retries, paused ? new Date(err.retryAt) : null,
      ]);
    }
    throw err;
  }
}

/**
 * The status of a server's refusal of a query as one it does not take: 400 (an unsupported parameter
 * or modifier, https://hl7.org/fhir/R4/search.html#errors), 405, 422 or 501; undefined for any other error.
 */
function refusedStatus(err: unknown): number | undefined {
  return err instanceof FhirHttpError && err.permanent && [400, 405, 422, 501].includes(err.status) ? err.status : undefined;
}

/**
 * What a query refused on its first page ends `complete` with (not failed): a 403 `forbidden` or
 * `security` for types the EHR's grant does not cover now (not granted, not-granted.ts; {@link grantCovers}), or a refusal as not supported of a query the
 * plan asks only of servers that can answer it (`whenRefused` in pull-plan.ts); undefined for any
 * other error, which fails the query as before.
 */
async function firstPageRefusal(err: unknown, task: TaskRow, client: FhirEndpointClient): Promise<{ issue: ServerIssue; notGranted: boolean } | undefined> {
  if (!(err instanceof FhirHttpError && err.permanent)) return undefined;
  const types = task.askedTypes;
  const notGranted = refusedAsNotGranted(err, types);
  if (notGranted !== undefined && !(await grantCovers(client, task, types))) return { issue: notGranted, notGranted: true };
  const status = refusedStatus(err);
  const leftOut = status !== undefined ? whenRefused(task.queryKey) : undefined;
  return leftOut !== undefined ? { issue: { severity: 'warning', code: 'not-supported', text: `${leftOut} (HTTP ${status})` }, notGranted: false } : undefined;
}

/**
 * Whether the scope the EHR granted this client (as its token says now) covers the task's query. A 403
 * for a query the grant covers is not a scope gap but the EHR refusing this child's records (a consent
 * or a restriction): the query fails, as any refusal, where the case manager sees it. Unknown (no SMART
 * scope, or the token cannot be read now): covered, so the refusal stays a failure.
 */
async function grantCovers(client: FhirEndpointClient, task: TaskRow, types: readonly string[]): Promise<boolean> {
  const scope = await client.grantedScope().catch(() => undefined);
  // An `$everything` stream is planned under `read` (the operation reads the Patient's record), even one
  // of a single type; any other query is a search.
  const interaction = isEverythingStream(task) ? 'read' : 'search';
  return types.every((type) => scopeAllows(scope, type, interaction));
}

/**
 * The task as its query starts over from page one (its paging cursor expired): no cursor, and the
 * counters of the expired run emptied, so the new run's pages count the query's records once (its
 * first commit resets them in the database too). Retries, expected matches and the rest are kept.
 */
function startingOver(task: TaskRow): TaskRow {
  return { ...task, nextUrl: null, pages: 0, resources: 0, attachments: 0, typeCounts: {}, included: [], serverMessages: [] };
}

/** A page fetched and read, ready to commit. */
interface PreparedPage {
  readonly page: ScannedSearchPage;
  readonly entries: PageEntries;
  readonly attachments: PageAttachment[];
}

/** The attachments of a page's resources, each with a new id (kept only if its row is new). */
export function attachmentsOf(entries: readonly PageEntry[]): PageAttachment[] {
  return entries.flatMap((e) =>
    e.resource ? findAttachments(e.resource).map((a) => ({ ...a, id: randomUUID(), resourceType: e.type, remoteId: e.id })) : [],
  );
}

/** The task's next page (its first without a cursor); withdrawn unsent once `stopping` fires. */
async function fetchPage(client: FhirEndpointClient, task: TaskRow, stopping: AbortSignal | undefined): Promise<ScannedSearchPage> {
  const options = { stopBeforeSend: stopping };
  if (task.nextUrl) return client.fetchPage(task.nextUrl, scanSearchPage, options);
  if (task.requestPath.includes('$')) return client.operation(task.requestPath, task.requestParams, scanSearchPage, options);
  return client.search(task.requestPath, task.requestParams, scanSearchPage, options);
}
