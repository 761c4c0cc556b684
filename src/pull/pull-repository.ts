import type { Database, Queryable } from '../db/database';
import { MalformedResponseError } from '../fhir';
import { inlineDataDigest, type FoundAttachment } from './attachments';
import { countPage, type PageCount } from './included-resources';
import { typesAskedBy } from './not-granted';
import { pageRowsJson, type PageEntries } from './page-resources';
import { addServerMessages, type ServerIssue, type ServerMessage } from './server-messages';
import { OWN_CLOCK_MARGIN_MS, SERVER_TIME_MARGIN_MS } from './server-time';

export type PullState = 'queued' | 'running' | 'complete' | 'partial' | 'failed' | 'cancelled';
export type TaskState = 'queued' | 'running' | 'complete' | 'failed' | 'cancelled';

export interface PullRow {
  readonly id: string;
  readonly caseId: string;
  readonly state: PullState;
  readonly since: Date | null;
  readonly types: string[] | null;
  readonly requestedBy: string;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
  readonly attempt: number;
  /** Who cancelled the pull (a user's `sub`, or `system:case` when the case ended), and why. */
  readonly cancelledBy: string | null;
  readonly cancelReason: string | null;
}

export interface TaskRow {
  readonly id: string;
  readonly pullId: string;
  readonly sourceId: string;
  readonly resourceType: string;
  readonly queryKey: string;
  readonly requestPath: string;
  readonly requestParams: Record<string, string>;
  /** The types its query asks for (`typesAskedBy`, stored at insert: migration 046). */
  readonly askedTypes: readonly string[];
  readonly state: TaskState;
  readonly nextUrl: string | null;
  readonly pages: number;
  readonly resources: number;
  readonly typeCounts: Record<string, number>;
  /** What the server said about the query besides its results (distinct issues, pages carrying each). */
  readonly serverMessages: readonly ServerMessage[];
  readonly attachments: number;
  readonly retries: number;
  readonly lastError: string | null;
  /** While the task waits for its endpoint, paused by the circuit breaker: when a probe is let through. */
  readonly waitingUntil: Date | null;
  /** The patient at the source the task was planned for (null for tasks planned before migration 012). */
  readonly remotePatientId: string | null;
  /** How many matches the server said the query has (`Bundle.total`), null when it did not say. */
  readonly expectedMatches: number | null;
  /** `Type/id` of the distinct `_include`d resources counted in `resources` (migration 039; included-resources.ts). */
  readonly included: readonly string[];
  /** When the query first started (kept across retries); null while it never has. */
  readonly startedAt: Date | null;
  /** Its last change: started, a page committed, a retry or a wait recorded, ended, queued again. */
  readonly updatedAt: Date;
}

const PULL_COLUMNS = 'id, case_id, state, since, types, requested_by, created_at, finished_at, attempt, cancelled_by, cancel_reason';
const TASK_COLUMNS = `id, pull_id, source_id, resource_type, query_key, request_path, request_params, asked_types, state, next_url,
  pages, resources, type_counts, server_messages, attachments, retries, last_error, waiting_until, remote_patient_id, expected_matches, included,
  started_at, updated_at`;

interface PullDbRow {
  id: string;
  case_id: string;
  state: PullState;
  since: Date | null;
  types: string[] | null;
  requested_by: string;
  created_at: Date;
  finished_at: Date | null;
  attempt: number;
  cancelled_by: string | null;
  cancel_reason: string | null;
}
interface TaskDbRow {
  id: string;
  pull_id: string;
  source_id: string;
  resource_type: string;
  query_key: string;
  request_path: string;
  request_params: Record<string, string>;
  asked_types: string[];
  state: TaskState;
  next_url: string | null;
  pages: number;
  resources: number;
  type_counts: Record<string, number>;
  server_messages: ServerMessage[];
  attachments: number;
  retries: number;
  last_error: string | null;
  waiting_until: Date | null;
  remote_patient_id: string | null;
  expected_matches: number | null;
  included: string[];
  started_at: Date | null;
  updated_at: Date;
}

const toPull = (r: PullDbRow): PullRow => ({
  id: r.id,
  caseId: r.case_id,
  state: r.state,
  since: r.since,
  types: r.types,
  requestedBy: r.requested_by,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
  attempt: r.attempt,
  cancelledBy: r.cancelled_by,
  cancelReason: r.cancel_reason,
});
const toTask = (r: TaskDbRow): TaskRow => ({
  id: r.id,
  pullId: r.pull_id,
  sourceId: r.source_id,
  resourceType: r.resource_type,
  queryKey: r.query_key,
  requestPath: r.request_path,
  requestParams: r.request_params,
  askedTypes: r.asked_types,
  state: r.state,
  nextUrl: r.next_url,
  pages: r.pages,
  resources: r.resources,
  typeCounts: r.type_counts,
  serverMessages: r.server_messages,
  attachments: r.attachments,
  retries: r.retries,
  lastError: r.last_error,
  waitingUntil: r.waiting_until,
  remotePatientId: r.remote_patient_id,
  expectedMatches: r.expected_matches,
  included: r.included,
  startedAt: r.started_at,
  updatedAt: r.updated_at,
});

export async function insertPull(db: Queryable, p: { id: string; caseId: string; since: Date | null; types: string[] | null; requestedBy: string }): Promise<void> {
  await db.query(
    `INSERT INTO pulls (id, case_id, state, since, types, requested_by) VALUES ($1, $2, 'queued', $3, $4, $5)`,
    [p.id, p.caseId, p.since, p.types, p.requestedBy],
  );
}

/**
 * From when each query of the case is to be asked again: per `sourceId|queryKey|remotePatientId`, when
 * the query started in the newest pull in which that source's task with that key, for that patient,
 * completed (what it fetched, with what earlier complete tasks of the query fetched, covers everything
 * until then). By the EHR's clock, which stamps the `meta.lastUpdated` the bound is compared with: the
 * time it gave with the task's first page (`server_time`) less {@link SERVER_TIME_MARGIN_MS}; by ours
 * only where it gave none, the start of that pull less {@link OWN_CLOCK_MARGIN_MS} (see server-time.ts).
 * One task's time, never the latest of several: times of two clocks do not compare.
 *
 * Only tasks of pulls without an explicit `since` count. A pull asked with `since` (the case manager's
 * `POST …/pulls {since}`) asked each query for what changed after that instant only
 * (`_lastUpdated=gt…`, https://hl7.org/fhir/R4/search.html#lastUpdated; `_since`,
 * https://hl7.org/fhir/R4/patient-operation-everything.html): its completing says nothing of what
 * changed between the query's earlier run and that instant, so taken as the bound it would make every
 * later re-pull skip that window for good. A pull without `since` covers everything until its time:
 * in full, or from a bound chosen here (an incremental pull's queries, by induction). Starting a little
 * earlier than needed fetches some records again, which the raw store keeps once.
 *
 * A task that ended without fetching anything because its types were not granted (not-granted.ts) is
 * no bound: once the EHR grants them, the query is asked in full.
 */
export async function lastCompletedQueries(db: Queryable, caseId: string): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ source_id: string; query_key: string; remote_patient_id: string | null; since: Date }>(
    `SELECT DISTINCT ON (t.source_id, t.query_key, t.remote_patient_id) t.source_id, t.query_key, t.remote_patient_id,
            COALESCE(t.server_time - $2::interval, p.created_at - $3::interval) AS since
     FROM pull_tasks t JOIN pulls p ON p.id = t.pull_id
     WHERE p.case_id = $1 AND t.state = 'complete' AND p.since IS NULL AND NOT t.not_granted
     ORDER BY t.source_id, t.query_key, t.remote_patient_id, p.created_at DESC`,
    [caseId, `${SERVER_TIME_MARGIN_MS} milliseconds`, `${OWN_CLOCK_MARGIN_MS} milliseconds`],
  );
  return new Map(rows.map((r) => [`${r.source_id}|${r.query_key}|${r.remote_patient_id ?? ''}`, r.since]));
}

/**
 * A task of a new pull, `queued`; or, with `leftOut` (a query the plan leaves out: its types not
 * granted, not-granted.ts), `complete` at once with that message and nothing fetched.
 */
export async function insertTask(
  db: Queryable,
  t: {
    id: string; pullId: string; sourceId: string; resourceType: string; queryKey: string; path: string; params: Record<string, string>;
    /** The patient at the source the task pulls for (see migration 012). */
    remotePatientId: string | null;
    /** Why the query is not asked (`PlannedQuery.leftOut`). */
    leftOut?: ServerIssue;
  },
): Promise<void> {
  const left = t.leftOut !== undefined;
  await db.query(
    `INSERT INTO pull_tasks (id, pull_id, source_id, resource_type, query_key, request_path, request_params, state, remote_patient_id, server_messages, not_granted, asked_types, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text, $9, $10::jsonb, $11, $12::text[], CASE WHEN $8::text = 'complete' THEN now() END)`,
    [
      t.id, t.pullId, t.sourceId, t.resourceType, t.queryKey, t.path, JSON.stringify(t.params), left ? 'complete' : 'queued', t.remotePatientId,
      JSON.stringify(t.leftOut !== undefined ? addServerMessages([], [t.leftOut]) : []), left, typesAskedBy({ resourceType: t.resourceType, requestParams: t.params }),
    ],
  );
}

export async function findPull(db: Queryable, id: string): Promise<PullRow | undefined> {
  const { rows } = await db.query<PullDbRow>(`SELECT ${PULL_COLUMNS} FROM pulls WHERE id = $1`, [id]);
  return rows[0] ? toPull(rows[0]) : undefined;
}

export async function listPulls(db: Queryable, caseId: string): Promise<PullRow[]> {
  const { rows } = await db.query<PullDbRow>(`SELECT ${PULL_COLUMNS} FROM pulls WHERE case_id = $1 ORDER BY created_at DESC, id`, [caseId]);
  return rows.map(toPull);
}

/** Pulls that are not finished: the reconciler makes sure each has its jobs. */
export async function unfinishedPulls(db: Queryable): Promise<PullRow[]> {
  const { rows } = await db.query<PullDbRow>(`SELECT ${PULL_COLUMNS} FROM pulls WHERE state IN ('queued', 'running') ORDER BY created_at`);
  return rows.map(toPull);
}

/**
 * Attachments still `pending`, of one task or of a pull's complete tasks: their jobs were added by the
 * task (or a retry), so when Redis lost those jobs they are what must be queued again. In a stable
 * order, so inline batches (whose job ids derive from their members) come out the same each time.
 */
export async function pendingAttachmentsOf(db: Queryable, of: { taskId: string } | { completeTasksOfPull: string }): Promise<NewAttachment[]> {
  const { rows } = await db.query<{ id: string; inline: boolean }>(
    `SELECT a.id, a.inline FROM attachments a JOIN pull_tasks t ON t.id = a.task_id
      WHERE a.state = 'pending' AND ${'taskId' in of ? 't.id = $1' : "t.pull_id = $1 AND t.state = 'complete'"}
      ORDER BY a.task_id, a.resource_type, a.remote_id, a.position, a.id`,
    ['taskId' in of ? of.taskId : of.completeTasksOfPull],
  );
  return rows;
}

export async function setPullState(db: Queryable, id: string, state: PullState, finished: boolean): Promise<void> {
  await db.query(`UPDATE pulls SET state = $2, finished_at = CASE WHEN $3 THEN now() ELSE NULL END WHERE id = $1`, [id, state, finished]);
}

/**
 * The failed attachments of a finished pull are to be fetched again (a retry): they go back to
 * `pending`. Not those of a cancelled task, nor of one whose source was removed or now points at
 * another patient ({@link STALE_TASK_SQL}). Call inside the retry's transaction, after
 * {@link requeueFailedTasks} (which cancels the stale tasks).
 * @returns how many attachments were set pending again
 */
export async function resetFailedAttachments(db: Queryable, pullId: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE attachments a SET state = 'pending', error = NULL, updated_at = now() FROM pull_tasks t, case_sources s
      WHERE a.task_id = t.id AND t.pull_id = $1 AND a.state = 'failed' AND t.state <> 'cancelled' AND s.id = t.source_id
        AND NOT ${STALE_TASK_SQL}`,
    [pullId],
  );
  return rowCount;
}

/** Why an attachment still `pending` when its pull attempt ends is failed ({@link failUnfinishedAttachments}). */
export const ATTACHMENT_JOB_ENDED_REASON = 'not fetched: its fetch job ended without a result';

/**
 * The attachments of the pull still `pending` when its attempt ends are failed, with
 * {@link ATTACHMENT_JOB_ENDED_REASON}. Every job of the attempt is done by then (the flow's parent runs
 * after its children), so such a row gets no result in this attempt: its job failed for good without
 * recording it (the database down through its last attempts), or was never queued (its task's run
 * died between committing the page and queuing it, and the task failed). Left `pending`, it would wait
 * for ever, unseen by the pull's counts, and a retry ({@link resetFailedAttachments}) would find nothing
 * to fetch again. Call inside the transaction that finishes the pull.
 * @returns how many attachments were failed
 */
export async function failUnfinishedAttachments(db: Queryable, pullId: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE attachments a SET state = 'failed', error = $2, updated_at = now() FROM pull_tasks t
      WHERE a.task_id = t.id AND t.pull_id = $1 AND a.state = 'pending'`,
    [pullId, ATTACHMENT_JOB_ENDED_REASON],
  );
  return rowCount;
}

/**
 * The pull of these attachments is under way: a `queued` pull whose attachment jobs start is marked
 * `running`, as its first task starting does ({@link markTaskRunning}). A retry that only fetches
 * documents again (a complete pull's failed ones) runs no task, so this is what shows it running.
 * One statement, locking only the pull's row; a pull in any other state is left as it is.
 */
export async function markPullRunningForAttachments(db: Queryable, attachmentIds: readonly string[]): Promise<void> {
  await db.query(
    `UPDATE pulls p SET state = 'running'
      WHERE p.state = 'queued'
        AND p.id IN (SELECT t.pull_id FROM attachments a JOIN pull_tasks t ON t.id = a.task_id WHERE a.id = ANY($1::uuid[]))`,
    [attachmentIds],
  );
}

export async function bumpPullAttempt(db: Queryable, id: string): Promise<number> {
  const { rows } = await db.query<{ attempt: number }>(
    `UPDATE pulls SET attempt = attempt + 1, state = 'queued', finished_at = NULL WHERE id = $1 RETURNING attempt`,
    [id],
  );
  return rows[0]?.attempt ?? 1;
}

export async function findTask(db: Queryable, id: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskDbRow>(`SELECT ${TASK_COLUMNS} FROM pull_tasks WHERE id = $1`, [id]);
  return rows[0] ? toTask(rows[0]) : undefined;
}

export async function tasksOfPull(db: Queryable, pullId: string): Promise<TaskRow[]> {
  const { rows } = await db.query<TaskDbRow>(`SELECT ${TASK_COLUMNS} FROM pull_tasks WHERE pull_id = $1 ORDER BY source_id, query_key`, [pullId]);
  return rows.map(toTask);
}

/** The tasks of several pulls, by pull id, in {@link tasksOfPull}'s order. */
export async function tasksOfPulls(db: Queryable, pullIds: readonly string[]): Promise<Map<string, TaskRow[]>> {
  const { rows } = await db.query<TaskDbRow>(
    `SELECT ${TASK_COLUMNS} FROM pull_tasks WHERE pull_id = ANY($1::uuid[]) ORDER BY pull_id, source_id, query_key`,
    [pullIds],
  );
  const byPull = new Map<string, TaskRow[]>();
  for (const row of rows) {
    const task = toTask(row);
    const list = byPull.get(task.pullId);
    if (list) list.push(task);
    else byPull.set(task.pullId, [task]);
  }
  return byPull;
}

/**
 * The task is running, and so is its pull (a pull is `queued` until its first task starts). A task
 * that is complete or cancelled stays so. The pull's row is locked before the task's, the order
 * {@link cancelPulls} takes them in: the other order deadlocked with a cancel arriving as the
 * pull's first task started (PostgreSQL then aborted one of them).
 * @returns false when the task was not marked (complete, cancelled or gone)
 */
export async function markTaskRunning(db: Database, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM pulls WHERE id = (SELECT pull_id FROM pull_tasks WHERE id = $1) FOR UPDATE', [id]);
    return markLockedTaskRunning(tx, id);
  });
}

/** {@link markTaskRunning}, the pull's row locked already. */
async function markLockedTaskRunning(db: Queryable, id: string): Promise<boolean> {
  const { rows } = await db.query<{ marked: boolean }>(
    `WITH task AS (
       UPDATE pull_tasks SET state = 'running', started_at = COALESCE(started_at, now()), waiting_until = NULL, updated_at = now()
       WHERE id = $1 AND state IN ('queued', 'running', 'failed')
       RETURNING pull_id
     ), pull AS (
       UPDATE pulls SET state = 'running' FROM task WHERE pulls.id = task.pull_id AND pulls.state = 'queued'
     )
     SELECT EXISTS (SELECT 1 FROM task) AS marked`,
    [id],
  );
  return rows[0]?.marked === true;
}

/**
 * A running pull task handed back when its worker stops (SIGTERM) at a page boundary: `queued` again,
 * its cursor and counters as its last page committed them, so the next run — another worker, or this
 * service once restarted — marks it `running` (`markTaskRunning` takes a queued task) and resumes from
 * that cursor. `queued`, not `running`: no worker is asking the EHR for it now, and a pull whose
 * handed-back query nobody picks up is shown as waiting for a worker (`awaiting_worker`,
 * pull-activity.ts), not for the EHR. Its `last_error` is kept (a stop is not an error), and the
 * retries this run counted after its last commit are added. A task that ended meanwhile (cancelled) is
 * left as it is.
 * @returns the pages committed for the task (its cursor's position), or undefined when it was not
 *   running (cancelled meanwhile): nothing was handed back.
 */
export async function handTaskBack(db: Queryable, taskId: string, retriesDelta: number): Promise<number | undefined> {
  const { rows } = await db.query<{ pages: number }>(
    `UPDATE pull_tasks SET state = 'queued', retries = retries + $2, waiting_until = NULL, updated_at = now()
     WHERE id = $1 AND state = 'running'
     RETURNING pages`,
    [taskId, retriesDelta],
  );
  return rows[0]?.pages;
}

/**
 * Ends a task `complete` or `failed`. `serverMessages`, when given, replaces what the server said about
 * the query: a query refused as not supported, where the plan asks it only of servers that can answer
 * it (`whenRefused` in pull-plan.ts), ends complete with what the refusal left out said there.
 */
export async function markTaskFinished(
  db: Queryable, id: string, state: 'complete' | 'failed', lastError: string | null, retriesDelta = 0, serverMessages?: readonly ServerMessage[],
  /** Ended because the EHR did not grant its types (its first page refused: not-granted.ts). */
  notGranted = false,
): Promise<void> {
  await db.query(
    `UPDATE pull_tasks SET state = $2, last_error = $3, retries = retries + $4, waiting_until = NULL, finished_at = now(), updated_at = now(),
       server_messages = COALESCE($5::jsonb, server_messages), not_granted = $6
     WHERE id = $1 AND state <> 'cancelled'`,
    [id, state, lastError, retriesDelta, serverMessages === undefined ? null : JSON.stringify(serverMessages), notGranted],
  );
}

/** What a cancel changed. */
export interface CancelledPulls {
  readonly pullIds: string[];
  readonly tasks: number;
  readonly attachments: number;
}

/**
 * Cancels a queued or running pull, or every unfinished pull of a case: the pulls end `cancelled`
 * with who and why, and their work stops ({@link cancelTasks}). What was stored stays. Call inside the
 * caller's transaction.
 */
export async function cancelPulls(
  db: Queryable, of: { pullId: string } | { caseId: string }, cancelledBy: string, reason: string,
): Promise<CancelledPulls> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE pulls SET state = 'cancelled', finished_at = now(), cancelled_by = $2, cancel_reason = $3
     WHERE ${'pullId' in of ? 'id = $1' : 'case_id = $1'} AND state IN ('queued', 'running')
     RETURNING id`,
    ['pullId' in of ? of.pullId : of.caseId, cancelledBy, reason],
  );
  const pullIds = rows.map((r) => r.id).sort();
  if (pullIds.length === 0) return { pullIds, tasks: 0, attachments: 0 };
  return { pullIds, ...(await cancelTasks(db, { pullIds }, `cancelled: ${reason}`, 'not fetched: the pull was cancelled')) };
}

/**
 * Stops a source's work in the pulls under way (the source was removed, or now points at another
 * patient), with the reason ({@link cancelTasks}). The pulls go on with their other sources (a
 * cancelled task no longer counts in the pull's outcome, see `pullStateOf`). Call inside the
 * caller's transaction.
 */
export async function stopSourceInRunningPulls(db: Queryable, sourceId: string, reason: string): Promise<{ tasks: number; attachments: number }> {
  return cancelTasks(db, { sourceId }, reason, `not fetched: ${reason}`);
}

/**
 * The queued and running tasks in scope (of the given pulls, or of a source in the pulls under way)
 * end `cancelled` with `taskError` (a running one stops at its next page: {@link commitPage} refuses a
 * cancelled task), and their documents not fetched yet end `failed` with `attachmentError`, so the
 * completeness report says why a document is missing. One statement.
 */
async function cancelTasks(
  db: Queryable, scope: { pullIds: readonly string[] } | { sourceId: string }, taskError: string, attachmentError: string,
): Promise<{ tasks: number; attachments: number }> {
  const { rows } = await db.query<{ tasks: number; attachments: number }>(
    `WITH scope AS (
       SELECT t.id FROM pull_tasks t JOIN pulls p ON p.id = t.pull_id
       WHERE ${'pullIds' in scope ? 't.pull_id = ANY($1::uuid[])' : "t.source_id = $1 AND p.state IN ('queued', 'running')"}
     ), task AS (
       UPDATE pull_tasks t SET state = 'cancelled', last_error = $2, waiting_until = NULL, finished_at = now(), updated_at = now()
       FROM scope WHERE t.id = scope.id AND t.state IN ('queued', 'running')
       RETURNING t.id
     ), attachment AS (
       UPDATE attachments a SET state = 'failed', error = $3, updated_at = now()
       FROM scope WHERE a.task_id = scope.id AND a.state = 'pending'
       RETURNING a.id
     )
     SELECT (SELECT count(*)::int FROM task) AS tasks, (SELECT count(*)::int FROM attachment) AS attachments`,
    ['pullIds' in scope ? scope.pullIds : scope.sourceId, taskError, attachmentError],
  );
  return { tasks: rows[0]?.tasks ?? 0, attachments: rows[0]?.attachments ?? 0 };
}

/** Why a task is not retried: its source was removed, or now points at another patient. */
export const STALE_TASK_REASON = 'not retried: its source was removed from the case, or now points at another patient';

/**
 * SQL: the task `t` was planned for what its source `s` no longer is (the source removed, or pointing
 * at another patient than the task pulls for). The SQL twin of `pulledForAnotherPatient` in normalize.
 */
export const STALE_TASK_SQL = "(s.state = 'removed' OR (t.remote_patient_id IS NOT NULL AND t.remote_patient_id IS DISTINCT FROM s.remote_patient_id))";

/**
 * Unfinished tasks of a finished pull go back to the queue, keeping their cursors (they resume where
 * they stopped); those whose source was removed or now points at another patient than the task was
 * planned for are cancelled instead (never ask a care team again for a child who is not the case's).
 * @returns the ids of the tasks queued again
 */
export async function requeueFailedTasks(db: Queryable, pullId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `WITH stale AS (
       UPDATE pull_tasks t SET state = 'cancelled', last_error = $2, waiting_until = NULL, finished_at = now(), updated_at = now()
       FROM case_sources s
       WHERE t.pull_id = $1 AND t.state NOT IN ('complete', 'cancelled') AND s.id = t.source_id
         AND ${STALE_TASK_SQL}
       RETURNING t.id
     )
     UPDATE pull_tasks SET state = 'queued', finished_at = NULL, updated_at = now()
     WHERE pull_id = $1 AND state NOT IN ('complete', 'cancelled') AND id NOT IN (SELECT id FROM stale)
     RETURNING id`,
    [pullId, STALE_TASK_REASON],
  );
  return rows.map((r) => r.id);
}

export interface PageCommit {
  readonly task: TaskRow;
  readonly caseId: string;
  /** The cursor this page was fetched from, as the task held it (null: the first request). */
  readonly fromUrl: string | null;
  readonly pageNo: number;
  /** The page exactly as received (after content decoding); stored as is, each resource row cut out of it. */
  readonly body: Buffer;
  readonly fetchedAt: Date;
  /** The page's resources and where each lies in its bytes (page-resources.ts). */
  readonly entries: PageEntries;
  readonly nextUrl: string | null;
  readonly retriesDelta: number;
  readonly attachments: readonly PageAttachment[];
  /** The page's `Bundle.total` (the matches the server says its query has), when it sent one. */
  readonly expectedMatches?: number;
  /** The EHR's own time of the query's first page (server-time.ts): only with that page, when it gave one. */
  readonly serverTime?: Date;
  /**
   * The query starts over with this page (its paging cursor expired): the pages and cursor the task has
   * committed in the run this one replaces. The commit is guarded by them instead of `pageNo - 1` and
   * `fromUrl`, and the task's counters (pages, resources, attachments) start again from this page's, as
   * do `task.typeCounts`, `task.included` and `task.serverMessages` (the caller passes the task with those emptied), so the
   * query's records are counted once. The expired run's pages stay in `raw_pages`, numbered before this one.
   */
  readonly startsOver?: { readonly pages: number; readonly cursor: string };
}

/** An attachment found in a page's resource, with the id its row gets. */
export interface PageAttachment extends FoundAttachment {
  readonly id: string;
  readonly resourceType: string;
  readonly remoteId: string;
}

/** A new attachment row to fetch: inline ones are fetched in batches (see queues/fetch-attachment.ts). */
export interface NewAttachment {
  readonly id: string;
  readonly inline: boolean;
}

/** PostgreSQL's answer to text that is not valid JSON or not valid UTF-8. */
const INVALID_JSON_CODES = new Set(['22P02', '22P05', '22021', '22025']);

/**
 * SQL: the raw row key (`version_id`) of the page row `m` in {@link commitPage} (`$11` the page's fetch
 * time, `$12` the case, `$13` the source).
 *
 * A resource with `meta.versionId` is keyed by it: the server names its versions
 * (https://hl7.org/fhir/R4/resource.html#Meta). One without is keyed by its content,
 * `sha256:<hex of its bytes>`, so the same content received again is stored once and a change is a
 * new row (keyed '' before migration 027, a changed resource was dropped and the bundle kept the
 * stale one). Content going back to what an older row holds while other content is the newest stored
 * (A, then B, then A again) is a change too; its own key being taken, it is keyed
 * `sha256:<hex>@<fetch time>`. The newest stored row is the one fetched last: what normalize's version
 * selection (src/normalize/versions.ts) ends on for resources that carry neither versionId nor a
 * newer `meta.lastUpdated`. Each lookup is an index probe on the primary key, made only for rows
 * without a versionId.
 */
const RAW_VERSION_KEY_SQL = `CASE
  WHEN m.v <> '' THEN m.v
  WHEN NOT EXISTS (
    SELECT 1 FROM raw_resources s
     WHERE s.case_id = $12 AND s.source_id = $13 AND s.resource_type = m.t AND s.remote_id = m.i AND s.version_id = 'sha256:' || m.h
  ) THEN 'sha256:' || m.h
  WHEN (
    SELECT l.sha256 FROM raw_resources l
     WHERE l.case_id = $12 AND l.source_id = $13 AND l.resource_type = m.t AND l.remote_id = m.i
     ORDER BY l.fetched_at DESC, l.version_id DESC LIMIT 1
  ) = m.h THEN 'sha256:' || m.h
  ELSE 'sha256:' || m.h || '@' || to_char($11::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
END`;

/**
 * SQL (`ON CONFLICT … DO UPDATE` of {@link commitPage}'s attachment insert, `$14` the page's pull):
 * an attachment row another pull left not fetched is taken over by the pull that meets it again — it
 * failed there (download failed for good, or its pull was cancelled before it came), or it is still
 * `pending` although that pull has ended. Its row is keyed case-wide (migration 027), so without this
 * a later pull inserted nothing and never fetched the document (`attachments 0/0`, complete).
 *
 * Never taken over: a fetched row, nor one of this very pull (another query or page of it met the
 * document already: one job), nor a `pending` one of a pull still queued or running (its job is under
 * way; two jobs would fetch it twice). A row taken over gets the page's new id, so its fetch job's id
 * (`att-<id>-<attempt>`) is new too: a job of the earlier pull still kept in the queue under the old id
 * (BullMQ keeps failed jobs a week) neither stops this one being added nor finds the row (skipped).
 */
const ATTACHMENT_TAKEOVER_SQL = `attachments.state <> 'fetched'
  AND (SELECT t.pull_id FROM pull_tasks t WHERE t.id = attachments.task_id) IS DISTINCT FROM $14::uuid
  AND (attachments.state = 'failed'
       OR NOT EXISTS (SELECT 1 FROM pull_tasks t JOIN pulls p ON p.id = t.pull_id
                       WHERE t.id = attachments.task_id AND p.state IN ('queued', 'running')))`;
/** What a taken-over attachment row becomes: this page's, pending, its earlier outcome cleared. */
const ATTACHMENT_TAKEOVER_SET_SQL = `id = EXCLUDED.id, task_id = EXCLUDED.task_id, state = 'pending', error = NULL, integrity = NULL,
  inline = EXCLUDED.inline, content_type = EXCLUDED.content_type, declared_size = EXCLUDED.declared_size,
  declared_sha1 = EXCLUDED.declared_sha1, updated_at = now()`;

/**
 * Stores a page and advances the task's cursor in ONE statement (atomic by itself: no transaction
 * round trips on a page's critical path). The cursor update is guarded by the cursor and page count
 * the task had when the page was fetched, and every insert hangs on it, so a page committed twice
 * (a job that ran twice) changes nothing; rows are keyed, so a resource received again is not stored
 * twice: a resource row by its version, or its content when it has no `meta.versionId`
 * ({@link RAW_VERSION_KEY_SQL}), an attachment row by the resource position and what it is fetched
 * from (its URL, or the SHA-256 of its inline data), so a new version pointing at another Binary has
 * that one fetched (https://hl7.org/fhir/R4/datatypes.html#Attachment). Returns `committed: false`
 * when the page had already been committed, or the task was cancelled meanwhile (nothing of the page
 * is stored then).
 *
 * The page bytes travel once: PostgreSQL stores them and cuts each resource out of them at the span
 * this process found (page-resources.ts), as `json` (validated, kept as the text received). A
 * resource that is not valid JSON fails the page as malformed (retryable, like a garbled body).
 * The page's attachments are recorded `pending` for the attachment queue; the new ones are returned
 * in the page's order. The task's `resources` and `type_counts` grow by the page's matches and the
 * included resources its run had not brought yet (`included`, see included-resources.ts).
 */
export async function commitPage(db: Queryable, page: PageCommit): Promise<{ committed: boolean; newAttachments: NewAttachment[]; counted: PageCount }> {
  let rows: { committed: boolean; created: string[] | null }[];
  // Each match once, each distinct included resource once per run of the query (included-resources.ts).
  const counted = countPage(page.task, page.entries.entries);
  try {
    ({ rows } = await db.query<{ committed: boolean; created: string[] | null }>(
      `WITH advanced AS (
         UPDATE pull_tasks SET next_url = $2, pages = CASE WHEN $20 THEN 0 ELSE pages END + 1,
           resources = CASE WHEN $20 THEN 0 ELSE resources END + $3, attachments = CASE WHEN $20 THEN 0 ELSE attachments END + $4,
           retries = retries + $5, type_counts = $8, server_messages = $17, included = $21::jsonb,
           expected_matches = COALESCE($18::integer, expected_matches), server_time = COALESCE($19::timestamptz, server_time), updated_at = now()
         WHERE id = $1 AND pages = $6 AND next_url IS NOT DISTINCT FROM $7 AND state <> 'cancelled'
         RETURNING id
       ), raw_page_no AS (
         -- After the query started over, its raw pages go on after those of the expired run (kept as received).
         SELECT CASE WHEN $20 OR $6 > 0 THEN COALESCE((SELECT max(page_no) FROM raw_pages WHERE task_id = $1), 0) ELSE 0 END + 1 AS n FROM advanced
       ), page AS (
         INSERT INTO raw_pages (task_id, page_no, body, sha256, fetched_at)
         SELECT $1, raw_page_no.n, $9, encode(sha256($9), 'hex'), $11 FROM raw_page_no
         ON CONFLICT DO NOTHING
       ), resources AS (
         INSERT INTO raw_resources (case_id, source_id, resource_type, remote_id, version_id, resource, sha256, fetched_at, pull_id, task_id, page_no)
         SELECT $12, $13, m.t, m.i, ${RAW_VERSION_KEY_SQL}, convert_from(substring(COALESCE($10::bytea, $9::bytea) FROM m.o + 1 FOR m.n), 'UTF8')::json, m.h,
                $11, $14, $1, raw_page_no.n
         FROM raw_page_no, jsonb_to_recordset($15::jsonb) AS m(t text, i text, v text, h text, o integer, n integer)
         ON CONFLICT (case_id, source_id, resource_type, remote_id, version_id) DO NOTHING
       ), found AS (
         -- Each attachment once per page (DO UPDATE may not touch a row twice in one statement). One
         -- another pull left unfetched is taken over (ATTACHMENT_TAKEOVER_SQL): fetched by this pull.
         INSERT INTO attachments (id, case_id, source_id, task_id, resource_type, remote_id, position, url, data_sha256, inline, content_type,
           declared_size, declared_sha1, state)
         SELECT DISTINCT ON (a.t, a.r, a.p, a.u, a.d) a.id, $12, $13, $1, a.t, a.r, a.p, a.u, a.d, a.inl, a.ct, a.sz, a.sha1, 'pending'
         FROM advanced, jsonb_to_recordset($16::jsonb) AS a(id uuid, t text, r text, p text, u text, d text, inl boolean, ct text, sz bigint, sha1 text)
         ORDER BY a.t, a.r, a.p, a.u, a.d
         ON CONFLICT (case_id, source_id, resource_type, remote_id, position, url, data_sha256) DO UPDATE
           SET ${ATTACHMENT_TAKEOVER_SET_SQL}
           WHERE ${ATTACHMENT_TAKEOVER_SQL}
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM advanced) AS committed, (SELECT array_agg(id::text) FROM found) AS created`,
      [
        page.task.id,
        page.nextUrl,
        counted.resources,
        page.attachments.length,
        page.retriesDelta,
        page.startsOver?.pages ?? page.pageNo - 1,
        page.startsOver?.cursor ?? page.fromUrl,
        JSON.stringify(counted.typeCounts),
        page.body,
        page.entries.source,
        page.fetchedAt,
        page.caseId,
        page.task.sourceId,
        page.task.pullId,
        pageRowsJson(page.entries.entries),
        attachmentsJson(page.attachments),
        JSON.stringify(addServerMessages(page.task.serverMessages, page.entries.serverIssues)),
        page.expectedMatches ?? null,
        page.serverTime ?? null,
        page.startsOver !== undefined,
        JSON.stringify(counted.included),
      ],
    ));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && INVALID_JSON_CODES.has(code)) {
      throw new MalformedResponseError(`page ${page.pageNo}: a resource is not valid JSON`, true, { cause: err });
    }
    throw err;
  }
  const row = rows[0];
  if (!row?.committed) return { committed: false, newAttachments: [], counted };
  // In the page's order (RETURNING order is not guaranteed).
  const created = new Set(row.created ?? []);
  return { committed: true, newAttachments: page.attachments.filter((a) => created.has(a.id)).map((a) => ({ id: a.id, inline: a.data !== undefined })), counted };
}

/**
 * The attachment rows of a page (all `pending`: the attachment queue fetches them), each identified by
 * its resource, position and what it is fetched from: `u` the URL, `d` the digest of inline data.
 */
function attachmentsJson(attachments: readonly PageAttachment[]): string {
  return JSON.stringify(
    attachments.map((a) => ({
      id: a.id,
      t: a.resourceType,
      r: a.remoteId,
      p: a.position,
      u: a.url ?? null,
      d: a.data !== undefined ? inlineDataDigest(a.data) : null,
      inl: a.data !== undefined,
      ct: a.contentType ?? null,
      sz: a.size ?? null,
      sha1: a.sha1 ?? null,
    })),
  );
}
