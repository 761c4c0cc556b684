/**
 * A pull asked for again while the same one is under way (a case manager's double click, a portal
 * retrying) must not pull the whole record from the EHR twice: it answers the pull under way. The
 * same pull: of the same case, queued or running, with the same `since` and types, over the same
 * sources and patients (a source added or re-pointed since needs a new pull). Checked under the case
 * row lock, so two requests at once start one pull.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { sameMembers } from '../util/same-members';

/** A source a pull asks: its id and the patient there. */
export interface PullTarget {
  readonly sourceId: string;
  readonly remotePatientId: string;
}

/**
 * The id, state and task count of a queued or running pull of the case asking the same as this
 * request, if any. Call inside the transaction that holds the case row lock (`CASE_ROW_LOCK`).
 */
export async function pullUnderWay(
  tx: Queryable,
  caseId: string,
  request: { readonly since: Date | null; readonly types: readonly string[] | null },
  targets: readonly PullTarget[],
): Promise<{ id: string; state: string; tasks: number } | undefined> {
  const types = request.types && request.types.length > 0 ? [...request.types].sort() : null;
  const { rows } = await tx.query<{ id: string; state: string; targets: string[] | null; tasks: number }>(
    `SELECT p.id, p.state,
            (SELECT array_agg(DISTINCT t.source_id::text || '|' || coalesce(t.remote_patient_id, '')) FROM pull_tasks t WHERE t.pull_id = p.id) AS targets,
            (SELECT count(*)::int FROM pull_tasks t WHERE t.pull_id = p.id) AS tasks
     FROM pulls p
     WHERE p.case_id = $1 AND p.state IN ('queued', 'running')
       AND p.since IS NOT DISTINCT FROM $2
       AND (SELECT array_agg(x ORDER BY x) FROM unnest(p.types) x) IS NOT DISTINCT FROM $3::text[]
     ORDER BY p.created_at DESC`,
    [caseId, request.since, types],
  );
  const wanted = targets.map((t) => `${t.sourceId}|${t.remotePatientId}`);
  const match = rows.find((r) => sameMembers(r.targets ?? [], wanted));
  return match ? { id: match.id, state: match.state, tasks: match.tasks } : undefined;
}
