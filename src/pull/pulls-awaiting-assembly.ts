/**
 * Finished pulls whose case bundle was never assembled, and nobody was told: the pull reconciler's
 * second look (`queues/pull-reconcile.ts`). A pull's parent job (`assemble-case`) first finishes the
 * pull, then assembles; the reconciler's first look only covers unfinished pulls. So a parent that
 * finished its pull and then failed for good without recording `assembly.failed` (the database down
 * through its later attempts, where even that record fails), or that Redis lost while it ran, would
 * leave the case in `collecting_records` with no bundle and no alert.
 * @packageDocumentation
 */
import { TERMINAL_STATUSES } from '../cases/lifecycle';
import type { Queryable } from '../db/database';
import { pullAssemblyTrigger } from './pull-progress';

/** A finished pull still waiting for its assembly. */
export interface PullAwaitingAssembly {
  readonly id: string;
  readonly caseId: string;
  readonly attempt: number;
  readonly state: 'complete' | 'partial';
  /** Its bundle's trigger (`pull:<id>:<attempt>`), the key of its `assembly.failed` event. */
  readonly trigger: string;
}

/**
 * How long after a pull finished the reconciler still looks for its assembly (hours). The reconciler
 * runs every minute or so; the bound keeps its query over recent pulls only, and well inside the
 * shortest outbox retention (1 day), where an `assembly.failed` already recorded is still seen.
 */
export const AWAITING_ASSEMBLY_LOOKBACK_HOURS = 20;

/**
 * Pulls that finished `complete` or `partial` within {@link AWAITING_ASSEMBLY_LOOKBACK_HOURS}, are the
 * latest pull of a case that has not ended, and have neither a bundle built since they finished (theirs,
 * by trigger, or a rebuild) nor an `assembly.failed` event for their trigger.
 */
export async function pullsAwaitingAssembly(db: Queryable): Promise<PullAwaitingAssembly[]> {
  const { rows } = await db.query<{ id: string; case_id: string; attempt: number; state: 'complete' | 'partial' }>(
    `SELECT p.id, p.case_id, p.attempt, p.state
       FROM pulls p JOIN cases c ON c.id = p.case_id
      WHERE p.state IN ('complete', 'partial')
        AND p.finished_at > now() - make_interval(hours => $2)
        AND c.status <> ALL($1::text[])
        AND NOT EXISTS (SELECT 1 FROM pulls later WHERE later.case_id = p.case_id AND later.created_at > p.created_at)
        AND NOT EXISTS (SELECT 1 FROM case_bundles b WHERE b.case_id = p.case_id
                          AND (b.trigger = 'pull:' || p.id || ':' || p.attempt OR b.created_at >= p.finished_at))
        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = p.case_id AND o.type = 'assembly.failed'
                          AND o.data->>'trigger' = 'pull:' || p.id || ':' || p.attempt)
      ORDER BY p.finished_at`,
    [[...TERMINAL_STATUSES], AWAITING_ASSEMBLY_LOOKBACK_HOURS],
  );
  return rows.map((r) => ({ id: r.id, caseId: r.case_id, attempt: r.attempt, state: r.state, trigger: pullAssemblyTrigger(r.id, r.attempt) }));
}
