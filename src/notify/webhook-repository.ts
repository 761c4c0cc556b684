import type { Queryable } from '../db/database';

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

/** Stores a subscriber (active). */
export async function insertWebhook(
  db: Queryable,
  w: { id: string; url: string; sealedSecret: string; events: readonly string[]; allowInsecureHttp: boolean; createdBy: string },
): Promise<void> {
  await db.query(
    `INSERT INTO webhooks (id, url, sealed_secret, events, allow_insecure_http, state, created_by) VALUES ($1, $2, $3, $4, $5, 'active', $6)`,
    [w.id, w.url, w.sealedSecret, w.events, w.allowInsecureHttp, w.createdBy],
  );
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

/** Makes a subscriber active again with its failure count reset. */
export async function enableWebhook(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE webhooks SET state = 'active', consecutive_failures = 0, disabled_at = NULL, updated_at = now() WHERE id = $1`,
    [id],
  );
  return result.rowCount === 1;
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
 * Active subscribers of an event type that had subscribed when the event was raised: one registered
 * while the event waited in the outbox (the notify worker behind, or between a commit and its drain)
 * is not sent it, nor a backlog from before it existed.
 * @param db - Where subscribers are stored (the drain's transaction).
 * @param type - The event type.
 * @param raisedAt - When the event was raised (`outbox.created_at`).
 */
export async function subscribersOf(db: Queryable, type: string, raisedAt: Date): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM webhooks WHERE state = 'active' AND $1 = ANY(events) AND created_at <= $2`,
    [type, raisedAt],
  );
  return rows.map((r) => r.id);
}

/** One event for one subscriber. */
export interface WebhookDeliveryRow {
  readonly id: string;
  readonly webhookId: string;
  readonly outboxId: number;
  readonly state: 'queued' | 'delivered' | 'failed';
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

/** A delivered event: the subscriber's failures in a row start again from zero. */
export async function webhookDelivered(db: Queryable, id: string, webhookId: string): Promise<void> {
  await db.query(`UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now() WHERE id = $1`, [id]);
  await db.query(`UPDATE webhooks SET consecutive_failures = 0, last_error = NULL, updated_at = now() WHERE id = $1`, [webhookId]);
}

/**
 * An event given up on: counts against the subscriber; returns true when this failure disabled it
 * (the subscriber had `disableAfter` failed events in a row).
 */
export async function webhookEventFailed(db: Queryable, id: string, webhookId: string, error: string, disableAfter: number): Promise<boolean> {
  await db.query(`UPDATE webhook_deliveries SET state = 'failed' WHERE id = $1`, [id]);
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

/** Queued webhook deliveries older than `before` (their job may be lost): re-enqueued by the sweep. */
export async function staleWebhookDeliveries(db: Queryable, before: Date): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
     WHERE d.state = 'queued' AND w.state = 'active' AND d.created_at < $1 LIMIT 200`,
    [before],
  );
  return rows.map((r) => r.id);
}
