/**
 * When a pull last moved, and whether an unfinished one has stopped moving (stalled), with a short
 * hint for the case manager (no PHI: states, query keys, endpoint names and times only).
 *
 * Activity is what the database stamps: every change of a task (`pull_tasks.updated_at`: started,
 * each page committed, a retry or a wait for a paused endpoint recorded, finished, requeued,
 * cancelled) and of its documents (`attachments.updated_at`: found, fetched, failed, a failed
 * download attempt). A pull's last activity is the latest of those and of its creation.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { PullRow, TaskRow } from './pull-repository';

/** An unfinished pull (running) with no activity for this long is `stalled`. */
export const PULL_STALLED_AFTER_MS = 10 * 60_000;

/**
 * A `queued` pull no worker has started for this long is `stalled` (`not_started`). Shorter than
 * {@link PULL_STALLED_AFTER_MS}: with the pull workers up, a queued pull starts within seconds unless
 * they are busy with other pulls.
 */
export const PULL_NOT_STARTED_AFTER_MS = 5 * 60_000;

/**
 * Why an unfinished pull has not moved: `not_started` (queued, no worker has started it),
 * `awaiting_worker` (running, its remaining queries queued and none picked up), `awaiting_ehr` (a query
 * is running: waiting for the EHR's answer, or its worker stopped), `awaiting_documents` (every query
 * ended, documents still to download), `awaiting_finish` (everything ended, the pull not closed).
 */
export type StallReason = 'not_started' | 'awaiting_worker' | 'awaiting_ehr' | 'awaiting_documents' | 'awaiting_finish';

/** The times of a task the progress shows. */
export interface TaskTimes {
  /** When the query first started (kept across retries); null while it never has. */
  readonly startedAt: Date | null;
  /** Its last change (`updated_at`). */
  readonly updatedAt: Date;
}

/** What {@link activityOfPulls} reads. */
export interface PullActivityRead {
  readonly tasks: ReadonlyMap<string, TaskTimes>;
  /** Per pull, the last change of any of its documents. */
  readonly attachmentsByPull: ReadonlyMap<string, Date>;
  /** The database's clock, which stamps the times above. */
  readonly dbNow: Date;
}

/** The tasks' times, their documents' last change per pull, and the database's clock: two queries. */
export async function activityOfPulls(db: Queryable, pullIds: readonly string[]): Promise<PullActivityRead> {
  const [tasks, attachments] = await Promise.all([
    db.query<{ db_now: Date; id: string | null; started_at: Date | null; updated_at: Date | null }>(
      `SELECT n.db_now, t.id, t.started_at, t.updated_at
       FROM (SELECT now() AS db_now) n LEFT JOIN pull_tasks t ON t.pull_id = ANY($1::uuid[])`,
      [pullIds],
    ),
    db.query<{ pull_id: string; last_at: Date }>(
      `SELECT t.pull_id, max(a.updated_at) AS last_at FROM attachments a JOIN pull_tasks t ON t.id = a.task_id
       WHERE t.pull_id = ANY($1::uuid[]) GROUP BY t.pull_id`,
      [pullIds],
    ),
  ]);
  const byTask = new Map<string, TaskTimes>();
  for (const row of tasks.rows) {
    if (row.id !== null && row.updated_at !== null) byTask.set(row.id, { startedAt: row.started_at, updatedAt: row.updated_at });
  }
  return {
    tasks: byTask,
    attachmentsByPull: new Map(attachments.rows.map((r) => [r.pull_id, r.last_at])),
    dbNow: tasks.rows[0]?.db_now ?? new Date(),
  };
}

/** Where an unfinished pull stands in time (see {@link pullActivity}). */
export interface PullActivity {
  readonly lastActivityAt: Date;
  readonly stalled: boolean;
  /** Since when nothing has moved (or, for a query waiting for a paused endpoint, since its wait ended); null unless stalled. */
  readonly stalledSince: Date | null;
  readonly stalledReason: StallReason | null;
  /** One sentence for the case manager; null unless stalled. */
  readonly stalledHint: string | null;
}

/** An instant for a hint: ISO 8601 to the second, UTC. */
const at = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

const latest = (dates: readonly Date[]): Date => new Date(Math.max(...dates.map((d) => d.getTime())));

/**
 * The pull's last activity (its creation, its tasks' and documents' last changes), and whether it has
 * stalled at `now`: an unfinished pull (`queued` or `running`) with no activity for
 * {@link PULL_NOT_STARTED_AFTER_MS} (queued) or {@link PULL_STALLED_AFTER_MS} (running). A query
 * waiting for its endpoint, paused by the circuit breaker, is not idle until its wait ends
 * (`waitingUntil`). A query with a single slow page legitimately shows no activity while the EHR
 * answers: the hint says so ("waiting for the EHR's answer since …").
 */
export function pullActivity(
  pull: PullRow,
  tasks: readonly TaskRow[],
  times: ReadonlyMap<string, TaskTimes>,
  documents: { readonly lastChangeAt: Date | null; readonly pending: number },
  endpointNameOf: (task: TaskRow) => string | null,
  now: Date,
): PullActivity {
  const lastActivityAt = latest([
    pull.createdAt,
    ...tasks.flatMap((t) => times.get(t.id)?.updatedAt ?? []),
    ...(documents.lastChangeAt ? [documents.lastChangeAt] : []),
  ]);
  const calm: PullActivity = { lastActivityAt, stalled: false, stalledSince: null, stalledReason: null, stalledHint: null };
  if (pull.state !== 'queued' && pull.state !== 'running') return calm;

  const running = tasks.filter((t) => t.state === 'running');
  // A query waiting for a paused endpoint is expected to move again when its wait ends.
  const idleSince = latest([lastActivityAt, ...running.flatMap((t) => t.waitingUntil ?? [])]);
  const idleMs = now.getTime() - idleSince.getTime();
  const stalled = (reason: StallReason, hint: string): PullActivity => ({ lastActivityAt, stalled: true, stalledSince: idleSince, stalledReason: reason, stalledHint: hint });

  if (pull.state === 'queued') {
    if (idleMs < PULL_NOT_STARTED_AFTER_MS) return calm;
    return stalled('not_started', `Queued since ${at(idleSince)}: no worker has started it. The pull workers may be down, or busy with other pulls.`);
  }
  if (idleMs < PULL_STALLED_AFTER_MS) return calm;
  // Running and not waiting for a paused endpoint: asking the EHR (a query whose wait ended is to be picked up again).
  const asking = running.filter((t) => t.waitingUntil === null);
  const first = asking[0];
  if (first) {
    const endpoint = endpointNameOf(first);
    const others = asking.length > 1 ? ` and ${asking.length - 1} other ${asking.length === 2 ? 'query' : 'queries'}` : '';
    return stalled(
      'awaiting_ehr',
      `Waiting for the EHR's answer since ${at(idleSince)} (query ${first.queryKey}${endpoint ? ` at ${endpoint}` : ''}${others}): ` +
        'a slow EHR can take minutes for one page. If this lasts, check that the pull workers are running.',
    );
  }
  const toRun = tasks.filter((t) => t.state === 'queued').length + running.length;
  if (toRun > 0) {
    return stalled(
      'awaiting_worker',
      `No query has moved since ${at(idleSince)}: ${toRun} still to run, none picked up. The pull workers may be down, or busy with other pulls.`,
    );
  }
  if (documents.pending > 0) {
    return stalled(
      'awaiting_documents',
      `Every query has ended; ${documents.pending} document${documents.pending === 1 ? '' : 's'} still to download, none finished since ${at(idleSince)}. ` +
        'The document workers may be down, or an EHR is slow to send them.',
    );
  }
  return stalled('awaiting_finish', `Every query and document ended by ${at(idleSince)}, but the pull has not been closed: its finishing step has not run.`);
}
