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
import { hasBundleVersion } from '../assembly/bundle-repository';
import { conflict } from '../http/problem';
import { pullAssemblyTrigger } from '../pull/pull-progress';

interface Readiness {
  readonly pull_under_way: string | null;
  readonly pull_state: string | null;
  readonly last_pull: string | null;
  readonly last_attempt: number | null;
  readonly bundle_version: number | null;
  /** A bundle was assembled after the last finished pull (or no pull ever finished). */
  readonly assembled_since: boolean;
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
       SELECT id::text, attempt, finished_at FROM pulls
       WHERE case_id = $1 AND state IN ('complete', 'partial', 'failed') AND finished_at IS NOT NULL
       ORDER BY finished_at DESC LIMIT 1
     )
     SELECT (SELECT id FROM under_way) AS pull_under_way,
            (SELECT state FROM under_way) AS pull_state,
            (SELECT id FROM last_pull) AS last_pull,
            (SELECT attempt FROM last_pull) AS last_attempt,
            (SELECT max(version) FROM case_bundles WHERE case_id = $1) AS bundle_version,
            NOT EXISTS (SELECT 1 FROM last_pull l WHERE NOT EXISTS (
              SELECT 1 FROM case_bundles b WHERE b.case_id = $1 AND b.created_at >= l.finished_at
            )) AS assembled_since`,
    [caseId],
  );
  // One row always (no FROM): the sub-selects are null when there is nothing.
  const r = rows[0] as Readiness;
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
  // Assembled by that pull's own parent job (its trigger), though stored before the pull's end was.
  const current = r.assembled_since || (r.last_pull !== null && (await hasBundleVersion(tx, caseId, pullAssemblyTrigger(r.last_pull, r.last_attempt ?? 1))));
  if (!current) {
    throw conflict(
      `The latest case record (bundle version ${r.bundle_version}) was assembled before pull ${r.last_pull ?? ''} finished, so it lacks what that pull brought: assemble it again (POST /api/cases/${caseId}/bundle/rebuild), then move the case to records_complete.`,
      { requirement: 'current_bundle', pullId: r.last_pull, bundleVersion: r.bundle_version },
    );
  }
}
