import pg from 'pg';
import { recordEvent } from '../../src/notify/events';
import { drainOutbox } from '../../src/notify/outbox-processor';
import { findWebhook, findWebhookDelivery, webhookDeliveryAttempt, webhookEventFailed } from '../../src/notify/webhook-repository';
import { sendWebhook, type WebhookSenderDeps, type WebhookTransports } from '../../src/notify/webhook-sender';
import { getWebhooks, reenableWebhook } from '../../src/notify/webhook-service';
import { startForFile } from '../support/for-file';
import type { TestDatabase } from '../support/postgres';
import { eventually } from '../support/service';
import { startWebhookSenderHarness, type WebhookReceiver } from './webhook-support';

/**
 * A subscriber enabled again (after failures, a 410 Gone, or an admin) is sent the events raised
 * from the moment it was enabled, and none raised while it was disabled: not those still waiting in
 * the outbox, nor deliveries left queued when it was disabled (the stale sweep queues them again).
 * Enabling it clears its failures in a row and last error; past delivery attempts are kept. Real
 * PostgreSQL and a real loopback subscriber; the outbox is drained and sent with the processor's own
 * functions (no workers), so each step is awaited.
 */
let t: TestDatabase;
let receiver: WebhookReceiver;
let deps: WebhookSenderDeps;
let transports: WebhookTransports;
let subscriber: (path: string) => Promise<string>;
startForFile(() => startWebhookSenderHarness(3), (h) => ({ t, receiver, deps, transports, subscriber } = h));

// Each test has its own subscribers: those of earlier tests would take its events too.
afterEach(async () => {
  await t.db.query('DELETE FROM webhooks');
});

/** Disables the subscriber as repeated failures do (count, last error, time). */
async function disable(id: string): Promise<void> {
  await t.db.query(
    `UPDATE webhooks SET state = 'disabled', consecutive_failures = 3, last_error = 'subscriber answered HTTP 500', disabled_at = now() WHERE id = $1`,
    [id],
  );
}

/** Raises a `transfer.requested` event marked `label`; returns its outbox id. */
async function raise(label: string): Promise<number> {
  await recordEvent(t.db, 'transfer.requested', null, { label });
  const { rows } = await t.db.query<{ id: string }>(`SELECT max(id) AS id FROM outbox`);
  return Number(rows[0]?.id);
}

/** Drains the outbox and sends every webhook delivery it made, as the workers do; returns the delivery ids. */
async function drainAndSend(): Promise<string[]> {
  const { webhookDeliveries } = await drainOutbox(t.db);
  for (const id of webhookDeliveries) await sendWebhook(deps, transports, id, true);
  return webhookDeliveries;
}

/** The labels of the events the receiver got under `path`, in order. */
const labelsAt = (path: string): string[] =>
  receiver.received.filter((r) => r.path === path).map((r) => (JSON.parse(r.body) as { data: { label: string } }).data.label);

it('sends a re-enabled subscriber the event raised after it was enabled, not the one raised while it was disabled', async () => {
  const hook = await subscriber('/outbox-backlog');
  await disable(hook);
  // Raised while disabled, still waiting in the outbox when the admin enables the subscriber (the notify worker is behind).
  await raise('while-disabled');
  await reenableWebhook({ db: t.db }, hook);
  await raise('after-enable');

  await drainAndSend();
  expect(labelsAt('/outbox-backlog')).toEqual(['after-enable']);
});

it('does not send, once the subscriber is enabled again, a delivery left queued when it was disabled', async () => {
  const hook = await subscriber('/queued-backlog');
  await raise('before-disable');
  const [stale] = (await drainOutbox(t.db)).webhookDeliveries;
  if (!stale) throw new Error('no delivery made');
  await disable(hook);
  // Its job runs while the subscriber is disabled: nothing is sent, the delivery stays queued.
  expect(await sendWebhook(deps, transports, stale, false)).toBe('subscriber-inactive');

  await reenableWebhook({ db: t.db }, hook);
  // The stale sweep queues it again: it is not sent, and says why; its attempts (none) are kept.
  expect(await sendWebhook(deps, transports, stale, true)).toBe('skipped');
  expect(await findWebhookDelivery(t.db, stale)).toMatchObject({ state: 'skipped', attempts: 0 });

  await raise('after-enable');
  await drainAndSend();
  expect(labelsAt('/queued-backlog')).toEqual(['after-enable']);
});

it('sends an event raised while the re-enable is being committed (the drain waits for it, it does not miss the event)', async () => {
  const hook = await subscriber('/racing');
  await disable(hook);
  const admin = new pg.Client({ connectionString: t.url });
  await admin.connect();
  let drain: ReturnType<typeof drainOutbox> | undefined;
  try {
    // The re-enable starts (its moment is the start of its transaction) but has not committed yet.
    await admin.query('BEGIN');
    await admin.query(`UPDATE webhooks SET state = 'active', enabled_at = now(), consecutive_failures = 0, last_error = NULL, disabled_at = NULL WHERE id = $1`, [hook]);
    await raise('during-enable');
    const draining = drainOutbox(t.db);
    drain = draining;
    const blocked = eventually(
      async () => (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0]?.n ?? 0,
      (n) => n > 0,
      10_000,
    );
    blocked.catch(() => undefined);
    const first = await Promise.race([draining.then(() => 'drained'), blocked.then(() => 'waiting for the re-enable')]);
    await admin.query('COMMIT');
    expect(first).toBe('waiting for the re-enable');
    const { webhookDeliveries } = await draining;
    expect(webhookDeliveries).toHaveLength(1);
  } finally {
    await admin.query('ROLLBACK').catch(() => undefined);
    await admin.end();
    await drain?.catch(() => undefined);
  }
  for (const id of (await t.db.query<{ id: string }>(`SELECT id FROM webhook_deliveries WHERE webhook_id = $1`, [hook])).rows.map((r) => r.id)) {
    await sendWebhook(deps, transports, id, true);
  }
  expect(labelsAt('/racing')).toEqual(['during-enable']);
});

it('clears the failures in a row and the last error when enabled again, and keeps the past delivery attempts', async () => {
  const hook = await subscriber('/fixed');
  await raise('failed-before');
  const [failed] = (await drainOutbox(t.db)).webhookDeliveries;
  if (!failed) throw new Error('no delivery made');
  // Its last attempt fails with a 500 and disables the subscriber (disableAfter 1), as the sender records it.
  await webhookDeliveryAttempt(t.db, failed, 500, 'subscriber answered HTTP 500');
  expect(await webhookEventFailed(t.db, failed, hook, 'subscriber answered HTTP 500', 1)).toBe(true);
  expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'disabled', consecutiveFailures: 1, lastError: 'subscriber answered HTTP 500' });

  const view = await reenableWebhook({ db: t.db }, hook);
  expect(view).toMatchObject({ state: 'active', consecutiveFailures: 0, lastError: null, disabledAt: null });
  expect((await getWebhooks({ db: t.db })).find((w) => w.id === hook)).toEqual(view);
  const { rows } = await t.db.query<{ state: string; attempts: number; last_status: number; last_error: string }>(
    'SELECT state, attempts, last_status, last_error FROM webhook_deliveries WHERE id = $1',
    [failed],
  );
  expect(rows).toEqual([{ state: 'failed', attempts: 1, last_status: 500, last_error: 'subscriber answered HTTP 500' }]);
});

it('shows when the subscriber was enabled: moved by enabling it again after it was disabled, kept when it was active', async () => {
  const hook = await subscriber('/moment');
  await t.db.query(`UPDATE webhooks SET created_at = now() - interval '1 hour', enabled_at = now() - interval '1 hour' WHERE id = $1`, [hook]);
  const created = await findWebhook(t.db, hook);
  // Asked of an active subscriber: its moment stays, so an event waiting in the outbox is still sent.
  await raise('pending');
  expect((await reenableWebhook({ db: t.db }, hook)).enabledAt).toBe(created?.enabledAt.toISOString());
  await drainAndSend();
  expect(labelsAt('/moment')).toEqual(['pending']);

  await disable(hook);
  const enabled = await reenableWebhook({ db: t.db }, hook);
  expect(Date.parse(enabled.enabledAt)).toBeGreaterThan((created?.enabledAt.getTime() ?? 0) + 30 * 60_000);
});
