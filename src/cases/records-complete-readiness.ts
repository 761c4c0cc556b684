/**
 * A case manager may move a case to `records_complete` by hand — typically after a pull ended
 * `partial` or `failed` and they decide to go on without the source that failed. That move starts
 * the SLA clock and lets a specialist be assigned, so it must not happen before the records it
 * promises exist:
 * - no pull of the case is queued or running (its end moves the case itself, with its bundle);
 * - the case has a bundle, assembled after the last pull that finished (by that pull's parent job,
 *   or a rebuild since): otherwise the specialist would open nothing, or a record without what that
 *   pull brought.
 * The pull's own move (`finish-pull.ts`) always assembles first and does not pass here.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { conflict } from '../http/problem';

interface Readiness {
  readonly pull_under_way: string | null;
  readonly pull_state: string | null;
  readonly last_pull: string | null;
  readonly bundle_version: number | null;
  readonly bundle_after_last_pull: boolean;
}

/**
 * Refuses (409 naming what is missing and what to do) a manual move of `caseId` to
 * `records_complete` while a pull runs or before a current bundle exists. Call under the case row
 * lock, in the transaction that moves the case.
 * @throws HttpProblem 409
 */
export async function refuseRecordsCompleteBeforeBundle(tx: Queryable, caseId: string): Promise<void> {
  const { rows } = await tx.query<Readiness>(
    `WITH under_way AS (
       SELECT id::text, state FROM pulls WHERE case_id = $1 AND state IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1
     ), last_pull AS (
       SELECT id::text, 'pull:' || id::text || ':' || attempt AS trigger, finished_at FROM pulls
       WHERE case_id = $1 AND state IN ('complete', 'partial', 'failed') AND finished_at IS NOT NULL
       ORDER BY finished_at DESC LIMIT 1
     ), latest_bundle AS (
       SELECT version, created_at, trigger FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1
     )
     SELECT (SELECT id FROM under_way) AS pull_under_way,
            (SELECT state FROM under_way) AS pull_state,
            (SELECT id FROM last_pull) AS last_pull,
            (SELECT version FROM latest_bundle) AS bundle_version,
            coalesce((SELECT true FROM last_pull l WHERE EXISTS (
              SELECT 1 FROM case_bundles b WHERE b.case_id = $1 AND (b.trigger = l.trigger OR b.created_at >= l.finished_at)
            )), (SELECT NOT EXISTS (SELECT 1 FROM last_pull))) AS bundle_after_last_pull`,
    [caseId],
  );
  const r = rows[0];
  if (!r) return;
  if (r.pull_under_way !== null) {
    throw conflict(
      `Pull ${r.pull_under_way} of this case is ${r.pull_state ?? 'under way'}: the case moves to records_complete by itself when it ends with every source pulled. Wait for it, or cancel it first.`,
      { requirement: 'no_pull_under_way', pullId: r.pull_under_way },
    );
  }
  if (r.bundle_version === null) {
    throw conflict(
      `The case has no assembled record yet, so a specialist would open nothing: assemble it first (POST /api/cases/${caseId}/bundle/rebuild), then move it to records_complete.`,
      { requirement: 'bundle' },
    );
  }
  if (!r.bundle_after_last_pull) {
    throw conflict(
      `The latest case record (bundle version ${r.bundle_version}) was assembled before pull ${r.last_pull ?? ''} finished, so it lacks what that pull brought: assemble it again (POST /api/cases/${caseId}/bundle/rebuild), then move the case to records_complete.`,
      { requirement: 'current_bundle', pullId: r.last_pull, bundleVersion: r.bundle_version },
    );
  }
}
