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
  documents: { readonly lastChangeAt: Date | null; readonly pending: number },
  endpointNameOf: (task: TaskRow) => string | null,
  now: Date,
): PullActivity {
  const lastActivityAt = latest([
    pull.createdAt,
    ...tasks.map((t) => t.updatedAt),
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
