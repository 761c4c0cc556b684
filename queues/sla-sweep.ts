import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import type { Database } from '../src/db/database';
import { SLA_RUNNING_STATUSES } from '../src/db/case-repository';
import { errorFields, logger, withLogContext } from '../src/log';
import { keepJobScheduler } from './keep-scheduled';

/**
 * Queue `sla-sweep`: every few minutes, record on each case's timeline the moment its report
 * became overdue (target: 5 business days; limit: 7), and tell the case managers (notification and
 * webhook events `sla.target_missed`, `sla.limit_missed`) so they can act.
 *
 * Idempotent: a miss is inserted once per (case, kind, due date) by a unique index, so a job that
 * runs twice, or two workers sweeping at once, record it once. A later pause that moves the due
 * date out lets the new due date be missed (and recorded) again.
 */
export const SLA_SWEEP_QUEUE = 'sla-sweep';

export const SlaSweepPayload = z.object({}).strict();
export type SlaSweepPayload = z.infer<typeof SlaSweepPayload>;

/** How often the sweep runs. */
export const SLA_SWEEP_EVERY_MS = 5 * 60 * 1000;

export interface SlaSweepResult {
  readonly targetMissed: number;
  readonly limitMissed: number;
}

/**
 * The processor's work, callable directly (tests, `npm run` tools). Each announcement carries the due
 * instant (`dueAt`, UTC: the end of the due day in the program's time zone) and the due day as the
 * program counts it (`dueDay`, `timeZone`): `2026-01-21T04:59:59Z` is Tuesday the 20th in New York.
 */
export async function sweepSla(db: Database, now: Date, timeZone: string): Promise<SlaSweepResult> {
  const record = async (type: 'sla_target_missed' | 'sla_limit_missed', column: 'sla_target_due' | 'sla_limit_due') => {
    // The timeline event and the case manager's notification (outbox) in one statement, only for the
    // misses this sweep recorded (a miss already on the timeline is not announced again).
    const result = await db.query(
      `WITH missed AS (
         INSERT INTO case_events (case_id, at, type, actor_sub, reason, data)
         SELECT id, $2, $3, 'system:sla-sweep',
                $4, jsonb_build_object('dueAt', to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
         FROM cases
         WHERE status = ANY($1::text[]) AND ${column} IS NOT NULL AND ${column} < $2
         ON CONFLICT (case_id, type, (data->>'dueAt')) WHERE type IN ('sla_target_missed', 'sla_limit_missed') DO NOTHING
         RETURNING case_id, data->>'dueAt' AS due_at
       )
       INSERT INTO outbox (type, case_id, data)
       SELECT $5, case_id, jsonb_build_object('caseId', case_id, 'dueAt', due_at,
                'dueDay', to_char((due_at::timestamptz) AT TIME ZONE $6, 'YYYY-MM-DD'), 'timeZone', $6::text)
       FROM missed`,
      [
        SLA_RUNNING_STATUSES,
        now,
        type,
        type === 'sla_target_missed'
          ? 'The report is past its 5-business-day target.'
          : 'The report is past its 7-business-day limit.',
        type === 'sla_target_missed' ? 'sla.target_missed' : 'sla.limit_missed',
        timeZone,
      ],
    );
    return result.rowCount;
  };
  return { targetMissed: await record('sla_target_missed', 'sla_target_due'), limitMissed: await record('sla_limit_missed', 'sla_limit_due') };
}

export interface SlaSweepHandles {
  readonly queue: Queue;
  readonly worker: Worker;
}

export function startSlaSweep(db: Database, connection: () => ConnectionOptions, prefix: string, timeZone: string): SlaSweepHandles {
  const queue = new Queue(SLA_SWEEP_QUEUE, { connection: connection(), prefix });
  queue.on('error', () => undefined);
  const worker = new Worker<SlaSweepPayload, SlaSweepResult>(
    SLA_SWEEP_QUEUE,
    async (job) =>
      withLogContext({ jobId: `${SLA_SWEEP_QUEUE}:${job.id ?? ''}` }, async () => {
        SlaSweepPayload.parse(job.data);
        const result = await sweepSla(db, new Date(), timeZone);
        if (result.targetMissed + result.limitMissed > 0) logger.info('sla misses recorded', { counts: { ...result } });
        return result;
      }),
    { connection: connection(), prefix, concurrency: 1 },
  );
  worker.on('failed', (_job, err) => logger.error('sla sweep failed', errorFields(err)));
  worker.on('error', () => undefined); // connection errors: BullMQ reconnects by itself
  keepJobScheduler(queue, 'sla-sweep-schedule', SLA_SWEEP_EVERY_MS, { name: 'sweep', data: {}, opts: { removeOnComplete: 100, removeOnFail: 500 } }, worker);
  return { queue, worker };
}
