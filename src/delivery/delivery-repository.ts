import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/database';

/** Where a delivery stands; `needs_review` and `failed` wait for the case manager. */
export type DeliveryState = 'queued' | 'sending' | 'delivered' | 'needs_review' | 'failed' | 'superseded' | 'cancelled';

/** States a delivery ends in: it is never sent (again). */
export const SETTLED_DELIVERY_STATES: ReadonlySet<DeliveryState> = new Set(['delivered', 'needs_review', 'failed', 'superseded', 'cancelled']);

/**
 * Deliveries not sent yet that a newer version or the case's end takes over: every one `queued`,
 * `needs_review` or `failed`, and one `sending` that has not started writing. One `sending` whose
 * write started (`write_started_at`) is left to finish: a request may be on its way to the chart (a
 * newer version waits for it, then amends what it wrote). A settled one whose write started is in
 * doubt all the same: a newer version looks it up at the recipient ({@link earlierInDoubt}).
 */
const UNSENT = `(state IN ('queued', 'needs_review', 'failed') OR (state = 'sending' AND write_started_at IS NULL))`;

/** A delivery whose write may have reached the chart though no DiagnosticReport id is on record. */
const IN_DOUBT = `(write_started_at IS NOT NULL AND remote_ids->>'DiagnosticReport' IS NULL)`;

/** In doubt and not writing now: a look-up (or a case manager) may settle it. */
const SETTLEABLE_IN_DOUBT = `(${IN_DOUBT} AND state <> 'sending')`;

/** Ids the recipient gave the resources we wrote. */
export interface RemoteIds {
  DiagnosticReport?: string;
  DocumentReference?: string;
  Communication?: string;
}

/** One delivery of one version to one recipient, as stored. */
export interface DeliveryRow {
  readonly id: string;
  readonly caseId: string;
  readonly recipientId: string;
  readonly version: number;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly requeues: number;
  readonly remoteIds: RemoteIds;
  readonly mode: string | null;
  readonly lastError: string | null;
  readonly reviewReason: string | null;
  /** Why it waits in `needs_review`, as a code (null otherwise, and for rows from before migration 044 of another cause). */
  readonly reviewCode: DeliveryReviewCode | null;
  readonly candidates: unknown[];
  readonly lastAttemptAt: Date | null;
  /** When a write of this delivery may first have been sent to the recipient (migration 042). */
  readonly writeStartedAt: Date | null;
  readonly deliveredAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Db {
  id: string;
  case_id: string;
  recipient_id: string;
  version: number;
  state: DeliveryState;
  attempts: number;
  requeues: number;
  remote_ids: RemoteIds;
  mode: string | null;
  last_error: string | null;
  review_reason: string | null;
  review_code: DeliveryReviewCode | null;
  candidates: unknown[];
  last_attempt_at: Date | null;
  write_started_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const toRow = (r: Db): DeliveryRow => ({
  id: r.id,
  caseId: r.case_id,
  recipientId: r.recipient_id,
  version: r.version,
  state: r.state,
  attempts: r.attempts,
  requeues: r.requeues,
  remoteIds: r.remote_ids,
  mode: r.mode,
  lastError: r.last_error,
  reviewReason: r.review_reason,
  reviewCode: r.review_code,
  candidates: r.candidates,
  lastAttemptAt: r.last_attempt_at,
  writeStartedAt: r.write_started_at,
  deliveredAt: r.delivered_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** One delivery per (recipient, version); returns the ids created (none when they existed). */
export async function createDeliveries(db: Queryable, caseId: string, version: number, recipientIds: readonly string[]): Promise<string[]> {
  const created: string[] = [];
  for (const recipientId of recipientIds) {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO deliveries (id, case_id, recipient_id, version, state) VALUES ($1, $2, $3, $4, 'queued')
       ON CONFLICT (recipient_id, version) DO NOTHING RETURNING id`,
      [randomUUID(), caseId, recipientId, version],
    );
    if (rows[0]) created.push(rows[0].id);
  }
  return created;
}

/**
 * Deliveries of versions before `version` to the same recipients, not sent yet: superseded (a newer
 * version goes there now). An older version landing after the newer one would stand in the chart as
 * the current report. One writing now (its write started) is left to finish: the newer version
 * waits for it, then amends it ({@link olderVersionSending}). @returns how many
 */
export async function supersedeOlderDeliveries(db: Queryable, caseId: string, version: number, at: Date): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE deliveries SET state = 'superseded', review_reason = NULL, review_code = NULL, last_error = $3, updated_at = $4
     WHERE case_id = $1 AND version < $2 AND ${UNSENT}
       AND recipient_id IN (SELECT recipient_id FROM deliveries WHERE case_id = $1 AND version = $2)
     RETURNING id`,
    [caseId, version, `superseded by version ${version}, which goes to this recipient instead`, at],
  );
  return rows.length;
}

/** The newest version after `delivery`'s that goes to its recipient (cancelled ones aside), if any. */
export async function newerVersionGoesTo(db: Queryable, delivery: Pick<DeliveryRow, 'recipientId' | 'version'>): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT max(version) AS version FROM deliveries WHERE recipient_id = $1 AND version > $2 AND state <> 'cancelled'`,
    [delivery.recipientId, delivery.version],
  );
  return rows[0]?.version ?? undefined;
}

/**
 * The deliveries to a recipient whose DiagnosticReport was written there (its id recorded, whatever
 * the delivery's state): the reports in that chart, oldest first; with `beforeVersion`, those of
 * earlier versions only. Decides whether a later version is `amended` there and which
 * DocumentReference it replaces (`statusAtRecipient`), and whether the recipient's patient may
 * still change (not once a report is filed under it).
 */
export async function reportsFiledAtRecipient(db: Queryable, recipientId: string, beforeVersion?: number): Promise<DeliveryRow[]> {
  const { rows } = await db.query<Db>(
    `SELECT * FROM deliveries WHERE recipient_id = $1 AND ($2::int IS NULL OR version < $2) AND remote_ids->>'DiagnosticReport' IS NOT NULL ORDER BY version`,
    [recipientId, beforeVersion ?? null],
  );
  return rows.map(toRow);
}

/**
 * The version of an older delivery to the same recipient that is `sending` now, if any: a newer
 * version waits for it (its report may be landing in the chart), then amends what it wrote.
 */
export async function olderVersionSending(db: Queryable, delivery: Pick<DeliveryRow, 'recipientId' | 'version'>): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM deliveries WHERE recipient_id = $1 AND version < $2 AND state = 'sending' ORDER BY version LIMIT 1`,
    [delivery.recipientId, delivery.version],
  );
  return rows[0]?.version;
}

/**
 * Deliveries to the recipient that are in doubt (a write was started, no DiagnosticReport id is on
 * record) and not writing now: their report may be in the chart. Of versions before `beforeVersion`:
 * looked up before a later version's status there is decided; of every version (no bound): looked up
 * before the recipient's patient is chosen again (`chooseRecipientPatient`), so that a report in doubt
 * under a record merged away since neither blocks the choice for good nor is left out of the amendments.
 */
export async function earlierInDoubt(db: Queryable, recipientId: string, beforeVersion?: number): Promise<DeliveryRow[]> {
  const { rows } = await db.query<Db>(
    `SELECT * FROM deliveries WHERE recipient_id = $1 AND ($2::int IS NULL OR version < $2) AND ${SETTLEABLE_IN_DOUBT} ORDER BY version`,
    [recipientId, beforeVersion ?? null],
  );
  return rows.map(toRow);
}

/**
 * What a look-up at the recipient found of a delivery in doubt, recorded:
 * - `found`: its ids (then the chart holds it: a later version amends it, and the recipient's
 *   patient may change only to the record it was merged into);
 * - `absent`: no longer in doubt (nothing of it was written), only while the row is as it was read
 *   (`seen`: no attempt and no change since — a run of it meanwhile may have written);
 * - `unknown`: nothing changes: it stays in doubt (the recipient could not be looked through).
 * @returns whether the row changed
 */
export async function recordLookedUp(db: Queryable, seen: Pick<DeliveryRow, 'id' | 'attempts' | 'updatedAt'>, outcome: { outcome: 'found'; ids: RemoteIds } | { outcome: 'absent' }): Promise<boolean> {
  if (outcome.outcome === 'found') {
    const { rowCount } = await db.query(`UPDATE deliveries SET remote_ids = remote_ids || $2::jsonb, updated_at = now() WHERE id = $1`, [seen.id, JSON.stringify(outcome.ids)]);
    return (rowCount ?? 0) > 0;
  }
  const { rowCount } = await db.query(
    `UPDATE deliveries SET write_started_at = NULL, updated_at = now() WHERE id = $1 AND ${SETTLEABLE_IN_DOUBT} AND attempts = $2 AND abs(extract(epoch FROM updated_at - $3::timestamptz)) < 0.001`,
    [seen.id, seen.attempts, seen.updatedAt],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Why a delivery waits in `needs_review`, as the service acts on it (migration 044; `reviewReason` is
 * the sentence for the case manager):
 * - `patient-not-found`: the child was not found exactly once in the referring EHR (none, several,
 *   or the one given or matched by identifier is another child);
 * - `patient-on-record-not-child`: the patient on record there no longer stands for the child (merged, inactive…);
 * - `earlier-in-doubt`: an earlier version's write may be in the chart and could not be confirmed
 *   there; settling that version queues this one again ({@link reviewsWaitingOnDoubt}).
 */
export type DeliveryReviewCode = 'patient-not-found' | 'patient-on-record-not-child' | 'earlier-in-doubt';

/** What the review reason of a later version held back by an earlier one in doubt says (delivery-runner.ts). */
export const EARLIER_IN_DOUBT_REVIEW = 'may already be in the chart at this recipient';

/** Whether a delivery is in doubt and may be settled by a case manager: a write started, no DiagnosticReport id on record, not writing now. */
export function isInDoubt(d: Pick<DeliveryRow, 'writeStartedAt' | 'remoteIds' | 'state'>): boolean {
  return d.writeStartedAt !== null && !d.remoteIds.DiagnosticReport && d.state !== 'sending';
}

/**
 * What a case manager found in the chart at the recipient for a delivery in doubt, recorded, only
 * while it is still in doubt and not `sending`:
 * - `found`: the recipient's ids of its report (then it is filed there: a later version amends it and replaces it);
 * - `absent`: no longer in doubt (`write_started_at` cleared).
 * @returns whether the row changed
 */
export async function recordSettled(db: Queryable, id: string, settled: { found: RemoteIds } | { absent: true }): Promise<boolean> {
  const { rowCount } =
    'found' in settled
      ? await db.query(`UPDATE deliveries SET remote_ids = remote_ids || $2::jsonb, updated_at = now() WHERE id = $1 AND ${SETTLEABLE_IN_DOUBT}`, [id, JSON.stringify(settled.found)])
      : await db.query(`UPDATE deliveries SET write_started_at = NULL, updated_at = now() WHERE id = $1 AND ${SETTLEABLE_IN_DOUBT}`, [id]);
  return (rowCount ?? 0) > 0;
}

/**
 * Deliveries of later versions than `version` to the recipient in `needs_review` because an earlier
 * version in doubt could not be confirmed there (`earlier-in-doubt`): queued again once a
 * case manager settles it.
 */
export async function reviewsWaitingOnDoubt(db: Queryable, delivery: Pick<DeliveryRow, 'recipientId' | 'version'>): Promise<DeliveryRow[]> {
  const { rows } = await db.query<Db>(
    `SELECT * FROM deliveries WHERE recipient_id = $1 AND version > $2 AND state = 'needs_review' AND review_code = $3 ORDER BY version`,
    [delivery.recipientId, delivery.version, 'earlier-in-doubt' satisfies DeliveryReviewCode],
  );
  return rows.map(toRow);
}

/**
 * Deliveries of later versions than `version` to the recipient, `queued`: one may be waiting for this
 * one's write (`OlderVersionWritingError`); its job is added again when this one stops writing.
 */
export async function queuedNewerAt(db: Queryable, delivery: Pick<DeliveryRow, 'recipientId' | 'version'>): Promise<{ id: string; requeues: number }[]> {
  const { rows } = await db.query<{ id: string; requeues: number }>(
    `SELECT id, requeues FROM deliveries WHERE recipient_id = $1 AND version > $2 AND state = 'queued' ORDER BY version`,
    [delivery.recipientId, delivery.version],
  );
  return rows;
}

/**
 * The deliveries to a recipient whose report may be in the chart without its id on record: writing
 * now (`sending` with a write started: `writing`), or in doubt otherwise, after a look-up at the
 * recipient could not settle them (`inDoubt`). The recipient's patient may not change to another
 * chart meanwhile.
 */
export async function unsettledWritesAt(db: Queryable, recipientId: string): Promise<{ writing: DeliveryRow[]; inDoubt: DeliveryRow[] }> {
  const { rows } = await db.query<Db>(
    `SELECT * FROM deliveries WHERE recipient_id = $1 AND ((state = 'sending' AND write_started_at IS NOT NULL) OR ${IN_DOUBT}) ORDER BY version`,
    [recipientId],
  );
  const all = rows.map(toRow);
  return { writing: all.filter((d) => d.state === 'sending'), inDoubt: all.filter((d) => d.state !== 'sending') };
}

/**
 * The case's deliveries whose report may be in a chart without our knowing (a write started, no
 * DiagnosticReport id on record), writing now or not: what a cancellation must tell the case managers of.
 */
export async function inDoubtDeliveriesOfCase(db: Queryable, caseId: string): Promise<DeliveryRow[]> {
  const { rows } = await db.query<Db>(`SELECT * FROM deliveries WHERE case_id = $1 AND ${IN_DOUBT} ORDER BY version`, [caseId]);
  return rows.map(toRow);
}

/**
 * Committed right before the first create request of a delivery: a write may be sent from now on.
 * In one transaction with the recipient row locked `FOR SHARE` (a case manager choosing the patient
 * locks it for update and refuses while a write is under way): only while the delivery is still
 * `sending` (not superseded or cancelled meanwhile: those take the delivery's row lock, so either
 * they see the mark and leave it, or the mark sees them) and the recipient's patient is still the
 * one the report is filed under.
 * @returns `ok`, or why nothing may be written (the delivery's state now, or `patient-changed`)
 */
export async function markWriteStarted(db: Queryable, delivery: Pick<DeliveryRow, 'id' | 'recipientId'>, patientId: string): Promise<'ok' | 'patient-changed' | DeliveryState | 'missing'> {
  const { rows: recipient } = await db.query<{ remote_patient_id: string | null }>('SELECT remote_patient_id FROM case_recipients WHERE id = $1 FOR SHARE', [delivery.recipientId]);
  if (recipient[0]?.remote_patient_id !== patientId) return 'patient-changed';
  const { rows } = await db.query<{ id: string }>(
    `UPDATE deliveries SET write_started_at = COALESCE(write_started_at, clock_timestamp()), updated_at = now() WHERE id = $1 AND state = 'sending' RETURNING id`,
    [delivery.id],
  );
  if (rows.length > 0) return 'ok';
  return (await findDelivery(db, delivery.id))?.state ?? 'missing';
}

/** Every delivery of the case not sent yet, ended in `state` with `reason`. @returns how many */
async function settleUnsentDeliveries(db: Queryable, caseId: string, state: 'cancelled' | 'superseded', reason: string, at: Date): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE deliveries SET state = $4, review_reason = NULL, review_code = NULL, last_error = $2, updated_at = $3 WHERE case_id = $1 AND ${UNSENT} RETURNING id`,
    [caseId, reason, at, state],
  );
  return rows.length;
}

/** Every delivery of the case not sent yet: cancelled (the case ended: nothing more goes into the chart). @returns how many */
export function cancelUnsentDeliveries(db: Queryable, caseId: string, reason: string, at: Date): Promise<number> {
  return settleUnsentDeliveries(db, caseId, 'cancelled', reason, at);
}

/**
 * Every delivery of the case not sent yet: superseded by the correction under way (the signed report
 * was reopened before it reached the chart; the corrected version is delivered once signed). @returns how many
 */
export function supersedeUnsentDeliveries(db: Queryable, caseId: string, reason: string, at: Date): Promise<number> {
  return settleUnsentDeliveries(db, caseId, 'superseded', reason, at);
}

/** A delivery by id; `forUpdate` locks it. */
export async function findDelivery(db: Queryable, id: string, forUpdate = false): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<Db>(`SELECT * FROM deliveries WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/** A case's deliveries by version. */
export async function listDeliveries(db: Queryable, caseId: string): Promise<DeliveryRow[]> {
  const { rows } = await db.query<Db>('SELECT * FROM deliveries WHERE case_id = $1 ORDER BY version, created_at', [caseId]);
  return rows.map(toRow);
}

/**
 * Committed before each write to the recipient: the attempt is on record even if the worker dies.
 * Only while the delivery is still to be sent (`queued`, or `sending` after a run that died): one
 * cancelled or superseded after the run read it (the case cancelled, the report reopened or a newer
 * version signed in between) is never brought back to `sending`, where the run would go on to
 * `needs_review`, `failed` or even `delivered` over the settled state.
 * @returns the attempts now, or undefined when the delivery was settled meanwhile (the run stops)
 */
export async function recordAttempt(db: Queryable, id: string, at: Date): Promise<number | undefined> {
  const { rows } = await db.query<{ attempts: number }>(
    `UPDATE deliveries SET state = 'sending', attempts = attempts + 1, last_attempt_at = $2, updated_at = $2 WHERE id = $1 AND state IN ('queued', 'sending') RETURNING attempts`,
    [id, at],
  );
  return rows[0]?.attempts;
}

/** Ids found or created so far (kept across attempts, so a retry only writes what is missing). */
export async function saveRemoteIds(db: Queryable, id: string, remoteIds: RemoteIds, mode: string): Promise<void> {
  await db.query(`UPDATE deliveries SET remote_ids = remote_ids || $2::jsonb, mode = $3, updated_at = now() WHERE id = $1`, [id, JSON.stringify(remoteIds), mode]);
}

/**
 * Ends a run: delivered, needs_review (with candidates), failed (with the error), or cancelled /
 * superseded (not to be sent). Only while the delivery is in one of `from` (by default `sending`:
 * the run's own state since its attempt was recorded): one a cancellation, a reopening or a newer
 * signature settled meanwhile keeps its state, and the caller records no event and tells no one.
 * @param from the states the run may end it from: `queued` too where the run may end before its attempt is recorded
 * @returns whether the delivery changed (false: settled meanwhile, or no longer this run's)
 */
export async function finishDelivery(
  db: Queryable,
  id: string,
  change: { state: DeliveryState; lastError?: string | null; reviewReason?: string | null; reviewCode?: DeliveryReviewCode; candidates?: unknown[]; at: Date },
  from: readonly DeliveryState[] = ['sending'],
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deliveries SET state = $2, last_error = COALESCE($3, last_error), review_reason = $4, review_code = $7, candidates = COALESCE($5::jsonb, candidates),
       delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END, updated_at = $6 WHERE id = $1 AND state = ANY($8::text[])`,
    [id, change.state, change.lastError ?? null, change.reviewReason ?? null, change.candidates ? JSON.stringify(change.candidates) : null, change.at, change.reviewCode ?? null, from],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * A run that was to end in `needs_review` put back to `queued` instead, with a new job id
 * (`requeues`: the running job keeps its own): what the review was about changed during the run (a
 * patient chosen at the recipient, an earlier version's doubt settled), and nothing else queues a
 * delivery that was `sending` then. Only while it is still `sending`.
 * @returns the new `requeues` (its job id), or undefined when it was settled meanwhile
 */
export async function requeueRun(db: Queryable, id: string, note: string): Promise<number | undefined> {
  const { rows } = await db.query<{ requeues: number }>(
    `UPDATE deliveries SET state = 'queued', requeues = requeues + 1, review_reason = NULL, review_code = NULL, last_error = $2, updated_at = now()
     WHERE id = $1 AND state = 'sending' RETURNING requeues`,
    [id, note],
  );
  return rows[0]?.requeues;
}

/**
 * The deliveries `ids` as they are now, each row locked `FOR SHARE` (ordered by id): a case manager
 * settling one of them (`settleDeliveryInDoubt` locks it for update) either committed before, and
 * is seen here, or waits for this transaction and then finds the later versions it queues again.
 */
export async function lockDeliveries(db: Queryable, ids: readonly string[]): Promise<DeliveryRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<Db>(`SELECT * FROM deliveries WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE`, [ids]);
  return rows.map(toRow);
}

/** Keeps the last error of a failed attempt that will be retried (state back to queued). */
export async function noteError(db: Queryable, id: string, error: string): Promise<void> {
  await db.query(`UPDATE deliveries SET last_error = $2, state = CASE WHEN state = 'sending' THEN 'queued' ELSE state END, updated_at = now() WHERE id = $1`, [id, error]);
}

/** A manual retry of a failed or needs_review delivery: queued again with a new job id. */
export async function requeueDelivery(db: Queryable, id: string): Promise<number | undefined> {
  const { rows } = await db.query<{ requeues: number }>(
    `UPDATE deliveries SET state = 'queued', requeues = requeues + 1, review_reason = NULL, review_code = NULL, updated_at = now()
     WHERE id = $1 AND state IN ('failed', 'needs_review') RETURNING requeues`,
    [id],
  );
  return rows[0]?.requeues;
}

/** Deliveries that should have a job but may have lost it (Redis flushed, enqueue failed after commit). */
async function staleDeliveries(db: Queryable, olderThan: Date, after?: StaleDeliveryCursor): Promise<StaleDelivery[]> {
  // The cursor's time as PostgreSQL wrote it (microseconds): a JavaScript Date keeps milliseconds, and
  // rows of the same millisecond would then all sort after it again.
  const { rows } = await db.query<{ id: string; requeues: number; cursor_at: string }>(
    `SELECT id, requeues, updated_at::text AS cursor_at FROM deliveries
     WHERE state IN ('queued', 'sending') AND updated_at < $1 AND ($2::timestamptz IS NULL OR (updated_at, id) > ($2::timestamptz, $3::uuid))
     ORDER BY updated_at, id LIMIT $4`,
    [olderThan, after?.updatedAt ?? null, after?.id ?? null, STALE_DELIVERY_BATCH],
  );
  return rows.map((r) => ({ id: r.id, requeues: r.requeues, updatedAt: r.cursor_at }));
}

/** Most stale deliveries one sweep re-queues. */
export const STALE_DELIVERY_BATCH = 100;

/** Where a sweep of stale deliveries stopped: the next one goes on after it. */
interface StaleDeliveryCursor {
  /** `updated_at` as PostgreSQL's text (microseconds kept). */
  readonly updatedAt: string;
  readonly id: string;
}

/** A delivery whose job may be lost. */
export interface StaleDelivery extends StaleDeliveryCursor {
  readonly requeues: number;
}

/**
 * A sweep of stale deliveries that goes on where the last one stopped, and starts over once it
 * reached the end: a batch of deliveries legitimately waiting for hours (a recipient's outage, an
 * older version still writing) keeps the same `updated_at`, so a sweep taking the oldest 100 each
 * time would only ever re-add those, and a lost job behind them would never be queued again.
 */
export function staleDeliverySweep(): (db: Queryable, olderThan: Date) => Promise<StaleDelivery[]> {
  let cursor: StaleDeliveryCursor | undefined;
  return async (db, olderThan) => {
    let batch = await staleDeliveries(db, olderThan, cursor);
    if (batch.length === 0 && cursor !== undefined) batch = await staleDeliveries(db, olderThan);
    const last = batch.at(-1);
    cursor = batch.length < STALE_DELIVERY_BATCH || last === undefined ? undefined : { updatedAt: last.updatedAt, id: last.id };
    return batch;
  };
}
