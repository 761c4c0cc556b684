import type { Database, Queryable } from '../db/database';

/** A webhook subscriber, as stored (secret sealed). */
export interface WebhookRow {
  readonly id: string;
  readonly url: string;
  readonly sealedSecret: string;
  /**
   * The secret a rotation replaced (sealed like `sealedSecret`), still signing beside it until
   * `previousSecretUntil`; both null when there is none.
   */
  readonly previousSealedSecret: string | null;
  readonly previousSecretUntil: Date | null;
  readonly events: string[];
  readonly allowInsecureHttp: boolean;
  readonly state: 'active' | 'disabled';
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  readonly disabledAt: Date | null;
  /**
   * When the subscriber was created or last enabled again after being disabled: it is sent only the
   * events raised at or after this moment.
   */
  readonly enabledAt: Date;
  readonly createdAt: Date;
}

interface Db {
  id: string;
  url: string;
  sealed_secret: string;
  previous_sealed_secret: string | null;
  previous_secret_until: Date | null;
  events: string[];
  allow_insecure_http: boolean;
  state: 'active' | 'disabled';
  consecutive_failures: number;
  last_error: string | null;
  disabled_at: Date | null;
  enabled_at: Date;
  created_at: Date;
}

const toRow = (r: Db): WebhookRow => ({
  id: r.id,
  url: r.url,
  sealedSecret: r.sealed_secret,
  previousSealedSecret: r.previous_sealed_secret,
  previousSecretUntil: r.previous_secret_until,
  events: r.events,
  allowInsecureHttp: r.allow_insecure_http,
  state: r.state,
  consecutiveFailures: r.consecutive_failures,
  lastError: r.last_error,
  disabledAt: r.disabled_at,
  enabledAt: r.enabled_at,
  createdAt: r.created_at,
});

/**
 * Whether the secret a rotation replaced still signs at `now`.
 * @param w - The subscriber as stored.
 * @param now - The time of the send (or of the view).
 */
export function previousSecretActive<W extends Pick<WebhookRow, 'previousSealedSecret' | 'previousSecretUntil'>>(
  w: W,
  now: Date,
): w is W & { readonly previousSealedSecret: string; readonly previousSecretUntil: Date } {
  return w.previousSealedSecret !== null && w.previousSecretUntil !== null && w.previousSecretUntil.getTime() > now.getTime();
}

/**
 * Key of the transaction-scoped advisory lock that orders the moments subscribers are enabled from
 * (`enabled_at`) against outbox drains: taken exclusively by {@link insertWebhook} and
 * {@link enableWebhook}, shared by every drain ({@link lockSubscribersShared}). Above the int4 range,
 * so it cannot meet a `hashtext` key (billing), and not the migrator's.
 */
export const WEBHOOK_ENABLE_LOCK_KEY = 7_246_501_201;

/**
 * Takes the subscriber-enable lock exclusively for the rest of the transaction: it waits for every
 * drain in progress to end, and every drain starting after it waits for this transaction to end.
 * The moment set after it (`clock_timestamp()`, not the transaction's start) is then later than
 * every event a drain processed before, and earlier than the commit of every event raised from it.
 */
async function lockSubscribersExclusive(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [WEBHOOK_ENABLE_LOCK_KEY]);
}

/**
 * Takes the subscriber-enable lock shared, for the rest of the drain's transaction, before it reads
 * the outbox: drains do not wait for each other, only for a subscriber being created or enabled
 * again (until it commits), and such a creation or enable waits for the drains in progress.
 *
 * Why no event is missed: a subscriber W is sent the events with `created_at >= W.enabled_at`. Its
 * creation (or enable) takes the lock exclusively at some instant L, then sets `enabled_at` from
 * the clock, so `enabled_at >= L`. An event's `created_at` is the start of the transaction that
 * raised it, so an event with `created_at >= enabled_at` began, hence commits, after L. A drain
 * holding the shared lock before L ended before L (the exclusive lock waits for it), so it never saw
 * that event; a drain asking for it after L gets it only once W's transaction has committed, so every
 * statement it runs after (a new snapshot each, READ COMMITTED) sees W as committed. Conversely, an
 * event a drain processed without W was committed before L, so its `created_at` is before L, before
 * `enabled_at`: W is not owed it. (PostgreSQL's clock is assumed not to step backwards.)
 *
 * On PGlite (one connection, one transaction at a time) the lock is always free: it costs a query.
 * @param tx - The drain's transaction.
 */
export async function lockSubscribersShared(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock_shared($1::bigint)', [WEBHOOK_ENABLE_LOCK_KEY]);
}

/**
 * Stores a subscriber, active and enabled from now, in one transaction: it takes the
 * subscriber-enable lock exclusively (waiting for the drains in progress), then sets `enabled_at`
 * (and `created_at`, the same instant) from the clock, so it is sent every event raised from that
 * moment, even one raised and drained while this transaction was still committing (see
 * {@link lockSubscribersShared}).
 * @param db - Where subscribers are stored.
 * @param w - The subscriber (secret already sealed).
 */
export async function insertWebhook(
  db: Database,
  w: { id: string; url: string; sealedSecret: string; events: readonly string[]; allowInsecureHttp: boolean; createdBy: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    await lockSubscribersExclusive(tx);
    await tx.query(
      `INSERT INTO webhooks (id, url, sealed_secret, events, allow_insecure_http, state, created_by, enabled_at, created_at)
       SELECT $1, $2, $3, $4, $5, 'active', $6, at, at FROM (SELECT clock_timestamp() AS at) AS moment`,
      [w.id, w.url, w.sealedSecret, w.events, w.allowInsecureHttp, w.createdBy],
    );
  });
}

/** A subscriber by id. */
export async function findWebhook(db: Queryable, id: string): Promise<WebhookRow | undefined> {
  const { rows } = await db.query<Db>('SELECT * FROM webhooks WHERE id = $1', [id]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/** Every subscriber, oldest first. */
export async function listWebhooks(db: Queryable): Promise<WebhookRow[]> {
  const { rows } = await db.query<Db>('SELECT * FROM webhooks ORDER BY created_at, id');
  return rows.map(toRow);
}

/** Removes a subscriber and its deliveries. */
export async function deleteWebhook(db: Queryable, id: string): Promise<boolean> {
  return (await db.query('DELETE FROM webhooks WHERE id = $1', [id])).rowCount === 1;
}

/**
 * Makes a subscriber active again, in one transaction: its failures in a row and last error are
 * cleared (the past delivery attempts are kept), and a disabled one is enabled from now: the
 * subscriber-enable lock is taken exclusively first (waiting for the drains in progress), then
 * `enabled_at` is set from the clock, so every event raised from that moment is sent to it, even
 * one drained while this transaction was committing (see {@link lockSubscribersShared}); the
 * deliveries it was left with, all of events raised before, are
 * {@link skipDeliveriesRaisedBeforeEnabled | skipped}. An active subscriber keeps its moment, so
 * nothing pending for it is dropped. False when there is no such subscriber.
 * @param db - Where the subscriber is stored.
 * @param id - The subscriber.
 */
export async function enableWebhook(db: Database, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    await lockSubscribersExclusive(tx);
    const result = await tx.query(
      `UPDATE webhooks SET state = 'active', consecutive_failures = 0, last_error = NULL, disabled_at = NULL,
         enabled_at = CASE WHEN state = 'disabled' THEN clock_timestamp() ELSE enabled_at END, updated_at = now()
       WHERE id = $1`,
      [id],
    );
    if (result.rowCount !== 1) return false;
    await skipDeliveriesRaisedBeforeEnabled(tx, id);
    return true;
  });
}

/** Queued deliveries of events raised before their subscriber was last enabled, made `skipped` (finished, never sent). */
const SKIP_RAISED_BEFORE_ENABLED = `UPDATE webhook_deliveries d SET state = 'skipped', finished_at = now()
  FROM outbox o, webhooks w
  WHERE d.state = 'queued' AND o.id = d.outbox_id AND w.id = d.webhook_id AND o.created_at < w.enabled_at`;

/**
 * Marks `skipped` the subscriber's queued deliveries of events raised before it was last enabled:
 * those left queued when it was disabled. Their attempts are kept.
 * @returns how many were skipped
 */
export async function skipDeliveriesRaisedBeforeEnabled(db: Queryable, webhookId: string): Promise<number> {
  return (await db.query(`${SKIP_RAISED_BEFORE_ENABLED} AND d.webhook_id = $1`, [webhookId])).rowCount;
}

/**
 * Skips one queued delivery when its event was raised before its subscriber was last enabled (the
 * stale sweep queued it again once the subscriber was enabled); compared in SQL, to the microsecond.
 * @returns whether it was skipped
 */
export async function skipDeliveryIfRaisedBeforeEnabled(db: Queryable, deliveryId: string): Promise<boolean> {
  return (await db.query(`${SKIP_RAISED_BEFORE_ENABLED} AND d.id = $1`, [deliveryId])).rowCount === 1;
}

/**
 * Rotates a subscriber's secret in one statement: `sealedSecret` signs from now on and the secret it
 * replaces becomes the previous one, signing beside it until `previousUntil` (a previous one from an
 * earlier rotation is dropped: never more than two). With `previousUntil` null the replaced secret
 * stops at once. False when there is no such subscriber.
 * @param db - Where the subscriber is stored.
 * @param id - The subscriber.
 * @param sealedSecret - The new secret, sealed with the subscriber id as associated data.
 * @param previousUntil - End of the overlap, or null for none.
 */
export async function rotateWebhookSecret(db: Queryable, id: string, sealedSecret: string, previousUntil: Date | null): Promise<boolean> {
  const result = await db.query(
    `UPDATE webhooks SET
       previous_sealed_secret = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE sealed_secret END,
       previous_secret_until = $3::timestamptz,
       sealed_secret = $2,
       updated_at = now()
     WHERE id = $1`,
    [id, sealedSecret, previousUntil],
  );
  return result.rowCount === 1;
}

/**
 * Active subscribers of an event type that were enabled when the event was raised (`enabled_at` at
 * or before the event's `created_at`, compared in SQL): one registered, or enabled again, while the
 * event waited in the outbox (the notify worker behind, or between a commit and its drain) is not
 * sent it, nor a backlog from before it existed or while it was disabled.
 *
 * A subscriber created or enabled again while the drain runs is ordered against it by the
 * subscriber-enable lock the drain took first ({@link lockSubscribersShared}). Every subscriber of
 * the type is also locked `FOR SHARE` (state and moment are judged after the lock, not in the WHERE):
 * a drain meeting any other change of the row not yet committed (a disable, a direct UPDATE) waits
 * for it and judges the row as committed. The lock is held to the end of the drain's transaction.
 * @param db - Where subscribers are stored (the drain's transaction).
 * @param type - The event type.
 * @param outboxId - The event.
 */
export async function subscribersOf(db: Queryable, type: string, outboxId: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string; receives: boolean }>(
    `SELECT w.id, (w.state = 'active' AND w.enabled_at <= o.created_at) AS receives
     FROM webhooks w JOIN outbox o ON o.id = $2
     WHERE $1 = ANY(w.events)
     ORDER BY w.id
     FOR SHARE OF w`,
    [type, outboxId],
  );
  return rows.filter((r) => r.receives).map((r) => r.id);
}

/** One event for one subscriber. */
export interface WebhookDeliveryRow {
  readonly id: string;
  readonly webhookId: string;
  readonly outboxId: number;
  /** `skipped`: an event raised before its subscriber was enabled again, never sent. */
  readonly state: 'queued' | 'delivered' | 'failed' | 'skipped';
  readonly attempts: number;
}

/** A webhook delivery by id. */
export async function findWebhookDelivery(db: Queryable, id: string): Promise<WebhookDeliveryRow | undefined> {
  const { rows } = await db.query<{ id: string; webhook_id: string; outbox_id: number; state: WebhookDeliveryRow['state']; attempts: number }>(
    'SELECT id, webhook_id, outbox_id, state, attempts FROM webhook_deliveries WHERE id = $1',
    [id],
  );
  const r = rows[0];
  return r ? { id: r.id, webhookId: r.webhook_id, outboxId: Number(r.outbox_id), state: r.state, attempts: r.attempts } : undefined;
}

/** Counts an attempt with its HTTP status or error. */
export async function webhookDeliveryAttempt(db: Queryable, id: string, status: number | null, error: string | null): Promise<void> {
  await db.query('UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, last_error = $3 WHERE id = $1', [id, status, error]);
}

/**
 * Locks the subscriber's row (`FOR NO KEY UPDATE`, what its UPDATE takes) before any of its
 * deliveries is changed. One lock order for every transaction that changes both, subscriber first:
 * {@link enableWebhook} updates the subscriber, then skips its deliveries; a failed or delivered
 * event updates its delivery, then the subscriber's count. In the other order two of them could
 * each hold what the other waits for (a deadlock, one of them rolled back).
 */
async function lockSubscriberRow(tx: Queryable, webhookId: string): Promise<void> {
  await tx.query('SELECT 1 FROM webhooks WHERE id = $1 FOR NO KEY UPDATE', [webhookId]);
}

/**
 * A delivered event: the subscriber's failures in a row start again from zero. One transaction, so
 * a crash cannot record the delivery and leave the old count (which would disable the subscriber
 * after fewer failures in a row than `WEBHOOK_DISABLE_AFTER`). Only a delivery still `queued` is
 * marked (one skipped by an enable, or settled by another run, is left as it is, and the count too).
 * Subscriber locked first ({@link lockSubscriberRow}).
 * @returns whether the delivery was marked delivered
 */
export async function webhookDelivered(db: Database, id: string, webhookId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    await lockSubscriberRow(tx, webhookId);
    const delivered = await tx.query(
      `UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), finished_at = now() WHERE id = $1 AND state = 'queued'`,
      [id],
    );
    if (delivered.rowCount !== 1) return false;
    await tx.query('UPDATE webhooks SET consecutive_failures = 0, last_error = NULL, updated_at = now() WHERE id = $1', [webhookId]);
    return true;
  });
}

/**
 * An event given up on: counts against the subscriber; returns true when this failure disabled it
 * (the subscriber had `disableAfter` failed events in a row). Run it in a transaction: the subscriber
 * is locked first ({@link lockSubscriberRow}), then the delivery. Only a delivery still `queued`
 * fails: one an enable skipped meanwhile (or another run settled) is left as it is and not counted.
 */
export async function webhookEventFailed(db: Queryable, id: string, webhookId: string, error: string, disableAfter: number): Promise<boolean> {
  await lockSubscriberRow(db, webhookId);
  const failed = await db.query(`UPDATE webhook_deliveries SET state = 'failed', finished_at = now() WHERE id = $1 AND state = 'queued'`, [id]);
  if (failed.rowCount !== 1) return false;
  const { rows } = await db.query<{ state: string }>(
    `UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, last_error = $2, updated_at = now(),
       state = CASE WHEN consecutive_failures + 1 >= $3 THEN 'disabled' ELSE state END,
       disabled_at = CASE WHEN consecutive_failures + 1 >= $3 AND state = 'active' THEN now() ELSE disabled_at END
     WHERE id = $1 RETURNING state, (disabled_at = now()) AS just`,
    [webhookId, error, disableAfter],
  );
  const row = rows[0] as { state: string; just?: boolean } | undefined;
  return row?.state === 'disabled' && row.just === true;
}

/** Most webhook deliveries one stale sweep queues again. */
const STALE_WEBHOOK_BATCH = 200;

/**
 * Queued webhook deliveries of active subscribers older than `before` and not queued again by the
 * sweep since `before` (their job may be lost): re-enqueued by the sweep, which then stamps them
 * ({@link markWebhookDeliveriesRequeued}). Those never looked at come first, then the longest
 * unvisited, so the batch moves on through every stale delivery: a subscriber with hundreds of
 * deliveries still retrying (live jobs, re-adding them a no-op) cannot hold every batch and keep
 * another subscriber's lost delivery from being queued again.
 */
export async function staleWebhookDeliveries(db: Queryable, before: Date, limit: number = STALE_WEBHOOK_BATCH): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
     WHERE d.state = 'queued' AND w.state = 'active' AND d.created_at < $1 AND (d.requeued_at IS NULL OR d.requeued_at < $1)
     ORDER BY d.requeued_at NULLS FIRST, d.created_at, d.id
     LIMIT $2`,
    [before, limit],
  );
  return rows.map((r) => r.id);
}

/** Records that the stale sweep queued these deliveries again now: the next sweeps take the others first. */
export async function markWebhookDeliveriesRequeued(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(`UPDATE webhook_deliveries SET requeued_at = now() WHERE id = ANY($1::uuid[]) AND state = 'queued'`, [ids]);
}
