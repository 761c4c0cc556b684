import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { findWebhook, findWebhookDelivery, insertWebhook, webhookDelivered, webhookEventFailed } from '../../src/notify/webhook-repository';
import { testDatabaseForFile, type TestDatabase } from '../support/postgres';
import { eventually } from '../support/service';

/**
 * A webhook delivery's last failure (or its success) and the subscriber being enabled again change
 * the same two rows: both take the subscriber first, then the delivery, so they wait for each other
 * instead of deadlocking; and only a delivery still `queued` is marked failed or delivered (one the
 * enable skipped stays `skipped`, and does not count against the subscriber). Real PostgreSQL, the
 * enable's statements held open on a connection of the test's own.
 */
let t: TestDatabase;

testDatabaseForFile((created) => (t = created));

async function subscriberWithDelivery(): Promise<{ hook: string; delivery: string }> {
  const hook = randomUUID();
  await insertWebhook(t.db, { id: hook, url: 'https://hooks.example.org/h', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' });
  const { rows } = await t.db.query<{ id: string }>(
    `WITH e AS (INSERT INTO outbox (type, data, created_at, processed_at) VALUES ('transfer.requested', '{}', now() - interval '1 hour', now()) RETURNING id)
     INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state) SELECT gen_random_uuid(), $1, id, 'queued' FROM e RETURNING id`,
    [hook],
  );
  return { hook, delivery: rows[0]?.id ?? '' };
}

/** Connections of this database waiting for a lock. */
async function waitingForLocks(): Promise<number> {
  const { rows } = await t.db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
  return Number(rows[0]?.n);
}

it('a last failure meeting an enable in progress waits for it (no deadlock), then leaves the skipped delivery and the count alone', async () => {
  const { hook, delivery } = await subscriberWithDelivery();
  await t.db.query(`UPDATE webhooks SET enabled_at = now() WHERE id = $1`, [hook]);
  const enable = new pg.Client({ connectionString: t.url });
  await enable.connect();
  try {
    // The enable, as enableWebhook runs it: the subscriber's row first ...
    await enable.query('BEGIN');
    await enable.query(`UPDATE webhooks SET state = 'active', consecutive_failures = 0, last_error = NULL, updated_at = now() WHERE id = $1`, [hook]);
    // ... meanwhile the sender records the event's last failure in its transaction ...
    const failing = t.db.transaction((tx) => webhookEventFailed(tx, delivery, hook, 'subscriber answered HTTP 500', 3));
    failing.catch(() => undefined);
    await eventually(waitingForLocks, (n) => n > 0, 10_000);
    // ... then the enable skips the subscriber's leftover deliveries, and commits.
    await enable.query(`UPDATE webhook_deliveries SET state = 'skipped', finished_at = now() WHERE id = $1 AND state = 'queued'`, [delivery]);
    await enable.query('COMMIT');
    await expect(failing).resolves.toBe(false);
  } finally {
    await enable.query('ROLLBACK').catch(() => undefined);
    await enable.end();
  }
  expect((await findWebhookDelivery(t.db, delivery))?.state).toBe('skipped');
  expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'active', consecutiveFailures: 0, lastError: null });
});

it('marks delivered, or failed, only a delivery still queued', async () => {
  const { hook, delivery } = await subscriberWithDelivery();
  await t.db.query(`UPDATE webhook_deliveries SET state = 'skipped', finished_at = now() WHERE id = $1`, [delivery]);
  await t.db.query(`UPDATE webhooks SET consecutive_failures = 2, last_error = 'earlier' WHERE id = $1`, [hook]);
  expect(await webhookEventFailed(t.db, delivery, hook, 'late failure', 3)).toBe(false);
  expect(await webhookDelivered(t.db, delivery, hook)).toBe(false);
  expect((await findWebhookDelivery(t.db, delivery))?.state).toBe('skipped');
  expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'active', consecutiveFailures: 2, lastError: 'earlier' });

  const other = await subscriberWithDelivery();
  expect(await webhookDelivered(t.db, other.delivery, other.hook)).toBe(true);
  expect(await webhookEventFailed(t.db, other.delivery, other.hook, 'a stale run failed it', 1)).toBe(false);
  expect((await findWebhookDelivery(t.db, other.delivery))?.state).toBe('delivered');
  expect(await findWebhook(t.db, other.hook)).toMatchObject({ state: 'active', consecutiveFailures: 0 });
});
