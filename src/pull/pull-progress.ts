import type { Database } from '../db/database';
import { addToAttachmentTally, emptyAttachmentTally, type AttachmentTally } from './attachment-tally';
import { pullActivity } from './pull-activity';
import { tasksOfPulls, type PullRow, type TaskRow, type TaskState } from './pull-repository';
import { listSources, type SourceRow } from './source-repository';

interface AttachmentCounts extends AttachmentTally {
  found: number;
}

const emptyCounts = (): AttachmentCounts => ({ found: 0, ...emptyAttachmentTally() });

function sourceState(states: readonly TaskState[]): TaskState {
  if (states.some((s) => s === 'failed')) return 'failed';
  if (states.every((s) => s === 'complete')) return 'complete';
  if (states.some((s) => s === 'cancelled')) return 'cancelled';
  if (states.every((s) => s === 'queued')) return 'queued';
  return 'running';
}

/**
 * A task's state as the progress shows it. Once the pull attempt has ended, a task still `queued` or
 * `running` never finishes in it (its job failed for good without marking it, or stalled out):
 * the pull's end counted it failed (`pullStateOf`, the `pull.partial` notification names its
 * source), so it shows `failed`, and its source with it, rather than running for ever; a retry
 * runs it again.
 */
function shownTaskState(pull: PullRow, task: TaskRow): TaskState {
  const ended = pull.state !== 'queued' && pull.state !== 'running';
  return ended && (task.state === 'queued' || task.state === 'running') ? 'failed' : task.state;
}

/** What {@link attachmentCountsByTask} reads. */
interface AttachmentsRead {
  /** Per task: attachments found, fetched, failed, pending, and integrity problems. */
  readonly counts: ReadonlyMap<string, AttachmentCounts>;
  /** Per task: the last change of any of its attachments (`attachments.updated_at`). */
  readonly lastChangeAt: ReadonlyMap<string, Date>;
}

/** Per task: attachment counts, and when its attachments last changed. */
async function attachmentCountsByTask(db: Database, pullIds: readonly string[]): Promise<AttachmentsRead> {
  const { rows } = await db.query<{ task_id: string; state: string; integrity: string | null; n: number; last_at: Date }>(
    `SELECT a.task_id, a.state, a.integrity, count(*)::int AS n, max(a.updated_at) AS last_at
     FROM attachments a JOIN pull_tasks t ON t.id = a.task_id
     WHERE t.pull_id = ANY($1::uuid[]) GROUP BY 1, 2, 3`,
    [pullIds],
  );
  const counts = new Map<string, AttachmentCounts>();
  const lastChangeAt = new Map<string, Date>();
  for (const row of rows) {
    const own = counts.get(row.task_id) ?? emptyCounts();
    own.found += row.n;
    addToAttachmentTally(own, row.state, row.integrity, row.n);
    counts.set(row.task_id, own);
    const last = lastChangeAt.get(row.task_id);
    if (!last || row.last_at > last) lastChangeAt.set(row.task_id, row.last_at);
  }
  return { counts, lastChangeAt };
}

/** The last change of any document of the tasks; null when they have none. */
function lastDocumentChange(tasks: readonly TaskRow[], lastChangeAt: ReadonlyMap<string, Date>): Date | null {
  let last: Date | null = null;
  for (const task of tasks) {
    const at = lastChangeAt.get(task.id);
    if (at && (!last || at > last)) last = at;
  }
  return last;
}

/** Options of {@link pullProgresses}. */
export interface ProgressOptions {
  /**
   * The instant `stalled` is judged at; default the database's clock, which stamps the activity
   * times (tests pass a fixed one).
   */
  readonly now?: Date;
}

/** Progress of one pull; see {@link pullProgresses}. */
export async function pullProgress(db: Database, pull: PullRow, options: ProgressOptions = {}) {
  const [progress] = await pullProgresses(db, pull.caseId, [pull], options);
  if (!progress) throw new Error('no progress for the pull');
  return progress;
}

/**
 * Progress of a case's pulls, per source and per query (resource type): state, pages, resources
 * (each match, and each distinct `_include`d resource once per query; `included`: how many of them
 * were included; per type in `byType`), attachments found/fetched/failed/pending (per query, and over the
 * pull in `totals`), retries and the last error; and
 * the bundle version each pull's latest attempt assembled; when each query started and last moved, when
 * the pull last moved, and whether an unfinished one has stalled, with a hint (pull-activity.ts).
 * Five queries however many pulls there are, and a sixth for the database's clock unless `options.now`
 * is given.
 */
export async function pullProgresses(db: Database, caseId: string, pulls: readonly PullRow[], options: ProgressOptions = {}) {
  if (pulls.length === 0) return [];
  const pullIds = pulls.map((p) => p.id);
  const [allTasks, sources, attachments, endpoints, assembled, dbNow] = await Promise.all([
    tasksOfPulls(db, pullIds),
    listSources(db, caseId),
    attachmentCountsByTask(db, pullIds),
    db.query<{ id: string; name: string }>(
      'SELECT DISTINCT e.id, e.name FROM endpoints e JOIN case_sources s ON s.endpoint_id = e.id WHERE s.case_id = $1',
      [caseId],
    ),
    pullAssemblies(db, caseId),
    options.now ? null : db.query<{ now: Date }>('SELECT now() AS now').then((r) => r.rows[0]?.now ?? new Date()),
  ]);
  const endpointName = new Map(endpoints.rows.map((e) => [e.id, e.name]));
  const now = options.now ?? dbNow ?? new Date();
  const endpointOfSource = new Map(sources.map((s) => [s.id, endpointName.get(s.endpointId) ?? null]));
  return pulls.map((pull) => {
    const tasks = allTasks.get(pull.id) ?? [];
    const shown = progressOf(pull, tasks, sources, attachments.counts, endpointName, assembled.get(pullAssemblyTrigger(pull.id, pull.attempt)) ?? null);
    const moved = pullActivity(
      pull,
      tasks,
      { lastChangeAt: lastDocumentChange(tasks, attachments.lastChangeAt), pending: shown.totals.attachmentsPending },
      (t) => endpointOfSource.get(t.sourceId) ?? null,
      now,
    );
    return {
      ...shown,
      /** The pull's last activity: its creation, or the last change of any of its queries or documents. */
      lastActivityAt: moved.lastActivityAt.toISOString(),
      /**
       * An unfinished pull with no activity for a while (queued 5 minutes with no worker starting it,
       * running 10 minutes without a page, a query ending or a document fetched): see `stalledReason`
       * and `stalledHint`. A slow EHR answering one page may legitimately take that long.
       */
      stalled: moved.stalled,
      /** Since when nothing has moved; null unless stalled. */
      stalledSince: moved.stalledSince?.toISOString() ?? null,
      /** not_started | awaiting_worker | awaiting_ehr | awaiting_documents | awaiting_finish; null unless stalled. */
      stalledReason: moved.stalledReason,
      /** One sentence the case manager can be shown (no PHI); null unless stalled. */
      stalledHint: moved.stalledHint,
    };
  });
}

/** The trigger of the bundle version a pull attempt assembles (its flow's parent job, queues/assemble-case.ts). */
export function pullAssemblyTrigger(pullId: string, attempt: number): string {
  return `pull:${pullId}:${attempt}`;
}

/** The case's bundle versions assembled by pulls, by trigger. */
async function pullAssemblies(db: Database, caseId: string): Promise<Map<string, number>> {
  const { rows } = await db.query<{ trigger: string; version: number }>(
    `SELECT trigger, version FROM case_bundles WHERE case_id = $1 AND trigger LIKE 'pull:%'`,
    [caseId],
  );
  return new Map(rows.map((r) => [r.trigger, r.version]));
}

function progressOf(
  pull: PullRow,
  tasks: readonly TaskRow[],
  sources: readonly SourceRow[],
  attachmentsByTask: ReadonlyMap<string, AttachmentCounts>,
  endpointName: ReadonlyMap<string, string>,
  assembledVersion: number | null,
) {
  const bySource = sources
    .filter((s) => tasks.some((t) => t.sourceId === s.id))
    .map((source) => {
      const own = tasks.filter((t) => t.sourceId === source.id);
      return {
        sourceId: source.id,
        endpointId: source.endpointId,
        endpointName: endpointName.get(source.endpointId) ?? null,
        state: sourceState(own.map((t) => shownTaskState(pull, t))),
        /** Where the source stands now (`resolved`, `needs_review`, `removed`), whatever its queries in this pull did. */
        sourceState: source.state,
        /** Why the source needs review (e.g. the care team merged the child's record into another), null unless `needs_review`. */
        reviewReason: source.state === 'needs_review' ? source.reviewReason : null,
        resourceTypes: own.map((t) => ({
          query: t.queryKey,
          resourceType: t.resourceType,
          state: shownTaskState(pull, t),
          pages: t.pages,
          /**
           * The resources the query brought: each match, and each distinct `_include`d resource once
           * (by type and id), however many of its pages carried it (included-resources.ts).
           */
          resources: t.resources,
          /**
           * Of `resources`, the distinct `_include`d ones (`search.mode = include`: the Endpoint of an
           * ImagingStudy, the Medication of a MedicationRequest); 0 for a query without `_include`, and for
           * queries stored before migration 039 (their `resources` counted an included one on each page).
           */
          included: t.included.length,
          /** The matches the server said the query has (`Bundle.total`), null when it did not say; `resources` counts `_include`d ones too (see `included`). */
          expectedMatches: t.expectedMatches,
          byType: t.typeCounts,
          /** What the server said about the query besides its results (search.mode = outcome), e.g. results truncated. */
          serverMessages: t.serverMessages,
          attachments: attachmentsByTask.get(t.id) ?? emptyCounts(),
          retries: t.retries,
          lastError: t.lastError,
          /** Set while the query waits for its endpoint, paused by the circuit breaker: when it is tried again. */
          waitingUntil: shownTaskState(pull, t) === 'running' ? (t.waitingUntil?.toISOString() ?? null) : null,
          /** When the query first started (kept across retries); null while no worker has started it. */
          startedAt: t.startedAt?.toISOString() ?? null,
          /**
           * Its last change: started, a page committed, a retry or a wait recorded, ended, queued again.
           * While running, no change for minutes means the EHR has not answered its next page yet.
           */
          lastActivityAt: t.updatedAt.toISOString(),
        })),
      };
    });
  const totals = tasks.reduce(
    (acc, t) => {
      const a = attachmentsByTask.get(t.id) ?? emptyCounts();
      return {
        pages: acc.pages + t.pages,
        resources: acc.resources + t.resources,
        /** Of `resources`, the distinct `_include`d resources of each query (summed over queries). */
        included: acc.included + t.included.length,
        attachmentsFound: acc.attachmentsFound + a.found,
        attachmentsFetched: acc.attachmentsFetched + a.fetched,
        attachmentsFailed: acc.attachmentsFailed + a.failed,
        /** Found but neither fetched nor failed yet: still to be fetched (a retry sets failed ones pending again). */
        attachmentsPending: acc.attachmentsPending + a.pending,
        retries: acc.retries + t.retries,
        tasksComplete: acc.tasksComplete + (t.state === 'complete' ? 1 : 0),
        tasksWaiting: acc.tasksWaiting + (shownTaskState(pull, t) === 'running' && t.waitingUntil !== null ? 1 : 0),
        serverMessages: acc.serverMessages + t.serverMessages.length,
        expectedMatches: acc.expectedMatches + (t.expectedMatches ?? 0),
        tasksWithExpectedMatches: acc.tasksWithExpectedMatches + (t.expectedMatches !== null ? 1 : 0),
        tasks: acc.tasks + 1,
      };
    },
    {
      pages: 0, resources: 0, included: 0, attachmentsFound: 0, attachmentsFetched: 0, attachmentsFailed: 0, attachmentsPending: 0, retries: 0, tasksComplete: 0, tasksWaiting: 0, serverMessages: 0,
      expectedMatches: 0, tasksWithExpectedMatches: 0, tasks: 0,
    },
  );
  return {
    id: pull.id,
    caseId: pull.caseId,
    state: pull.state,
    attempt: pull.attempt,
    since: pull.since?.toISOString() ?? null,
    types: pull.types,
    createdAt: pull.createdAt.toISOString(),
    finishedAt: pull.finishedAt?.toISOString() ?? null,
    /** Who cancelled it (a user's `sub`) and why; null unless `cancelled`. */
    cancelled: pull.state === 'cancelled' ? { by: pull.cancelledBy, reason: pull.cancelReason } : null,
    failedSources: bySource.filter((s) => s.state === 'failed').map((s) => ({
      sourceId: s.sourceId,
      endpointName: s.endpointName,
      // Only for a source in review (the reason its queries stopped): see `reviewReason` of `sources`.
      ...(s.reviewReason !== null ? { reviewReason: s.reviewReason } : {}),
    })),
    totals,
    sources: bySource,
    /**
     * The case bundle version this pull's latest attempt assembled (the version whose trigger is
     * `pull:<id>:<attempt>`); null while it has not: the pull is queued or running, or its assembly
     * is queued or under way. A failed or cancelled pull assembles nothing; an assembly that failed
     * for good says so in an `assembly.failed` notification.
     */
    assembledVersion,
  };
}
