import type { Queryable } from '../db/database';
import { SLA_RUNNING_STATUSES } from '../db/case-repository';

/** How many misses a call recorded (each announced once). */
export interface SlaMisses {
  readonly targetMissed: number;
  readonly limitMissed: number;
}

const KINDS = [
  { type: 'sla_target_missed', column: 'sla_target_due', event: 'sla.target_missed', reason: 'The report is past its 5-business-day target.' },
  { type: 'sla_limit_missed', column: 'sla_limit_due', event: 'sla.limit_missed', reason: 'The report is past its 7-business-day limit.' },
] as const;

/**
 * Records on the timeline each SLA due date passed by `now` on a case whose clock runs, and tells the
 * case managers (outbox `sla.target_missed` / `sla.limit_missed`), in one statement per kind, once per
 * (case, kind, due date) by a unique index: a miss already recorded is not recorded or announced
 * again. Every case (the sweep), or one case — a transition that stops or pauses its clock calls it
 * first, under the case's lock, so a miss the sweep had not reached yet (a report signed late between
 * two sweeps, or while the workers were down) is recorded before the due dates leave the row.
 *
 * The timeline event is dated when the report became overdue (the first millisecond after its due
 * instant), not when this call noticed: a sweep that ran late, or workers that were down, do not
 * move the miss on the timeline to beside the signing that ended it.
 *
 * Each announcement carries the due instant (`dueAt`, UTC: the end of the due day in the program's
 * time zone) and the due day as the program counts it (`dueDay`, `timeZone`): `2026-01-21T04:59:59Z`
 * is Tuesday the 20th in New York.
 */
export async function recordSlaMisses(db: Queryable, now: Date, timeZone: string, caseId?: string): Promise<SlaMisses> {
  const counts: number[] = [];
  for (const kind of KINDS) {
    const result = await db.query(
      `WITH missed AS (
         INSERT INTO case_events (case_id, at, type, actor_sub, reason, data)
         SELECT id, ${kind.column} + interval '1 millisecond', $3, 'system:sla-sweep',
                $4, jsonb_build_object('dueAt', to_char(${kind.column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
         FROM cases
         WHERE status = ANY($1::text[]) AND ${kind.column} IS NOT NULL AND ${kind.column} < $2 AND ($7::uuid IS NULL OR id = $7::uuid)
         ON CONFLICT (case_id, type, (data->>'dueAt')) WHERE type IN ('sla_target_missed', 'sla_limit_missed') DO NOTHING
         RETURNING case_id, data->>'dueAt' AS due_at
       )
       INSERT INTO outbox (type, case_id, data)
       SELECT $5, case_id, jsonb_build_object('caseId', case_id, 'dueAt', due_at,
                'dueDay', to_char((due_at::timestamptz) AT TIME ZONE $6, 'YYYY-MM-DD'), 'timeZone', $6::text)
       FROM missed`,
      [SLA_RUNNING_STATUSES, now, kind.type, kind.reason, kind.event, timeZone, caseId ?? null],
    );
    counts.push(result.rowCount ?? 0);
  }
  return { targetMissed: counts[0] ?? 0, limitMissed: counts[1] ?? 0 };
}
