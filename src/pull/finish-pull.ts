import { settleCoveredRefusals } from './covered-refusals';
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import { findCase, insertCaseEvent } from '../db/case-repository';
import type { Queryable } from '../db/database';
import type { Principal } from '../http/auth';
import { logger } from '../log';
import { recordEvent, recordEventOnce, type EventType } from '../notify/events';
import { failUnfinishedAttachments, findPull, setPullState, tasksOfPull, type PullState } from './pull-repository';
import { noteworthyMessageCount } from './server-messages';
import { listSources } from './source-repository';

const SYSTEM_PULL: Principal = { sub: 'system:pull', roles: [] };

/**
 * The pull's end state from its tasks: complete, partial (some sources failed) or failed (all).
 * Tasks cancelled because their source was removed or re-pointed (see `requeueFailedTasks`) are no
 * longer part of the pull; a pull left with none is cancelled.
 */
export function pullStateOf(taskStates: readonly string[]): PullState {
  const counted = taskStates.filter((s) => s !== 'cancelled');
  if (counted.length === 0) return taskStates.length === 0 ? 'complete' : 'cancelled';
  const done = counted.filter((s) => s === 'complete').length;
  if (done === counted.length) return 'complete';
  return done === 0 ? 'failed' : 'partial';
}

/**
 * Runs when every task of a pull attempt is done (the flow's parent). Decides the pull's state and
 * writes it on the case timeline (naming failed sources); with `moveCase` (the default) a complete
 * pull also moves the case to `records_complete` (see {@link recordsCompleteAfter}). The parent job
 * passes `moveCase: false` and moves the case once the bundle is assembled, so that a case in
 * `records_complete` always has its bundle. A cancelled pull stays cancelled. Idempotent.
 *
 * A source the pull put in review (its child's record merged or made inactive: `source-review.ts`) is
 * among the failed ones (its `Patient` query failed with the reason), and named again in
 * `reviewSourceIds` of the timeline event and the `pull.partial` / `pull.failed` event: that is how the
 * case manager is told, once per pull attempt (the event is recorded only when this call finishes it).
 *
 * Documents of the pull still `pending` then are failed with it (`failUnfinishedAttachments`): their
 * fetch jobs are all done (the parent runs after them, and the reconciler decides only a pull whose
 * parent failed for good), so they would otherwise stay pending for ever, and a retry would find no
 * failed document to fetch again. The pull's state still comes from its tasks (a complete pull may
 * have failed documents: its retry fetches them).
 *
 * `event`: an outbox event recorded with the state, in the same transaction (its data gets
 * `pullState`), only when this call finishes the pull: the reconciler's "assembled never" alert
 * cannot be lost to a crash between the two, nor told twice.
 */
export async function finishPull(
  deps: CaseServiceDeps,
  pullId: string,
  options: { moveCase?: boolean; event?: { readonly type: EventType; readonly data: Readonly<Record<string, unknown>> } } = {},
): Promise<PullState> {
  const pull = await findPull(deps.db, pullId);
  if (!pull) return 'failed';
  // Cancelled: decided when it was cancelled (its timeline event written then); nothing to assemble.
  if (pull.state === 'cancelled') return 'cancelled';
  // A refusal another query made up for is information, not a warning (both outcomes are known by now).
  await settleCoveredRefusals(deps.db, pullId);
  const tasks = await tasksOfPull(deps.db, pullId);
  // A task not finished now never will be in this attempt (its job failed for good or stalled out).
  const state = pullStateOf(tasks.map((t) => t.state));
  if (pull.state !== state || !pull.finishedAt) {
    const sources = await listSources(deps.db, pull.caseId);
    const failedSourceIds = [...new Set(tasks.filter((t) => t.state !== 'complete' && t.state !== 'cancelled').map((t) => t.sourceId))];
    // Of those, the sources the pull put in review (the child's record there merged or made inactive: source-review.ts).
    const reviewSourceIds = failedSourceIds.filter((id) => sources.some((s) => s.id === id && s.state === 'needs_review'));
    const inReview = reviewSourceIds.length > 0 ? { reviewSourceIds } : {};
    // The state, its timeline event and (when the case manager must act) the notification: all or none.
    const finished = await deps.db.transaction(async (tx) => {
      // Cancelled since it was read (the case manager's cancel answered `cancelled`): it stays so.
      const { rows } = await tx.query<{ state: PullState }>('SELECT state FROM pulls WHERE id = $1 FOR UPDATE', [pullId]);
      if (rows[0]?.state === 'cancelled') return 'cancelled';
      // Every job of the attempt is done: a document still pending never gets a result in it (its job
      // failed for good without recording one). Failed, it counts, and a retry fetches it again.
      const notFetched = await failUnfinishedAttachments(tx, pullId);
      await setPullState(tx, pullId, state, true);
      await insertCaseEvent(tx, {
        caseId: pull.caseId,
        type: `pull_${state}`,
        actorSub: SYSTEM_PULL.sub,
        reason:
          state === 'complete'
            ? 'All sources were pulled.'
            : state === 'cancelled'
              ? "Nothing left to pull: each remaining query's source was removed or now points at another patient."
              : `Sources that failed: ${failedSourceIds.length} of ${sources.filter((s) => tasks.some((t) => t.sourceId === s.id)).length}.` +
                (reviewSourceIds.length > 0 ? ` Of those, ${reviewSourceIds.length} need review: the care team merged or deactivated the child's record there; choose the patient again.` : ''),
        data: { pullId, failedSourceIds, ...inReview, resources: tasks.reduce((n, t) => n + t.resources, 0) },
      });
      if (state === 'partial' || state === 'failed') await recordEvent(tx, `pull.${state}`, pull.caseId, { caseId: pull.caseId, pullId, failedSourceIds, ...inReview });
      if (options.event) await recordEvent(tx, options.event.type, pull.caseId, { ...options.event.data, pullState: state });
      return { notFetched };
    });
    if (finished === 'cancelled') return 'cancelled';
    if (finished.notFetched > 0) logger.warn('documents still pending when the pull ended: failed', { caseId: pull.caseId, pullId, counts: { attachments: finished.notFetched } });
    logger.info('pull finished', { caseId: pull.caseId, pullId, state });
  }
  if (options.moveCase !== false) await recordsCompleteAfter(deps, pull.caseId, pullId, state);
  return state;
}

/**
 * After a complete pull, a case still `collecting_records` moves to `records_complete`, which starts
 * the SLA clock and lets a specialist be assigned. Idempotent. The notification counts the noteworthy
 * things the EHRs said about the pull's searches (`serverMessages`): the case manager reads them
 * before assigning.
 *
 * Not while another pull of the case is queued or running (a source added meanwhile, another scope):
 * its records are not in yet, so the last pull to end complete moves the case, as a case manager's
 * move waits for it (`refuseRecordsCompleteBeforeBundle`). Decided under the case row lock, which a
 * pull's start takes too, so that two pulls ending at once move the case once.
 */
export async function recordsCompleteAfter(deps: CaseServiceDeps, caseId: string, pullId: string, state: PullState, bundleVersion?: number): Promise<void> {
  if (state !== 'complete') return;
  if ((await findCase(deps.db, caseId))?.status !== 'collecting_records') return;
  const serverMessages = noteworthyMessageCount(await tasksOfPull(deps.db, pullId));
  await deps.db.transaction(async (tx) => {
    if ((await findCase(tx, caseId, true))?.status !== 'collecting_records') return;
    const other = await otherPullUnderWay(tx, caseId, pullId);
    if (other !== undefined) {
      logger.info('case stays collecting_records: another pull is under way', { caseId, pullId, otherPullId: other });
      return;
    }
    await transitionCase(deps, tx, { id: caseId, to: 'records_complete', reason: 'All records are in', actor: SYSTEM_PULL, now: deps.now?.() ?? new Date() });
    await recordEvent(tx, 'records.complete', caseId, {
      caseId, ...(bundleVersion !== undefined ? { version: bundleVersion } : {}), ...(serverMessages > 0 ? { serverMessages } : {}),
    });
  });
}

/** Another pull of the case that is queued or running (its id), if any. */
async function otherPullUnderWay(tx: Queryable, caseId: string, pullId: string): Promise<string | undefined> {
  const { rows } = await tx.query<{ id: string }>(
    "SELECT id::text FROM pulls WHERE case_id = $1 AND id <> $2 AND state IN ('queued', 'running') ORDER BY created_at LIMIT 1",
    [caseId, pullId],
  );
  return rows[0]?.id;
}

/**
 * Tells the case managers that a finished pull's bundle was not assembled (`assembly.failed`), once
 * per trigger (`pull:<id>:<attempt>`): the parent job's last attempt, or the reconciler's look at
 * finished pulls when even that could not record it.
 * @returns whether it was recorded now
 */
export function recordPullAssemblyFailed(
  db: Queryable,
  pull: { readonly caseId: string; readonly pullId: string; readonly trigger: string; readonly pullState: PullState },
  reason: string,
): Promise<boolean> {
  return recordEventOnce(db, 'assembly.failed', pull.caseId, { caseId: pull.caseId, pullId: pull.pullId, trigger: pull.trigger, pullState: pull.pullState, reason }, 'trigger');
}
