import { recordEvent } from '../../src/notify/events';
import { drainOutbox } from '../../src/notify/outbox-processor';
import { findWebhook, findWebhookDelivery } from '../../src/notify/webhook-repository';
import { sendWebhook, type WebhookSenderDeps, type WebhookTransports } from '../../src/notify/webhook-sender';
import { startForFile } from '../support/for-file';
import { refuseWrites } from '../support/pg-fault';
import type { TestDatabase } from '../support/postgres';
import { startWebhookSenderHarness, type WebhookReceiver } from './webhook-support';

/**
 * A subscriber that answered 2xx took the event: when recording that fails on our side (the
 * database refusing the write, a failover), the subscriber is not charged with a failed event — not
 * its last error, not its failures in a row, not its disabling, not a "kept failing" notice — and
 * the delivery stays `queued`, to be sent again with the same event id (at least once). Real
 * PostgreSQL (a trigger refusing the "delivered" write), a real loopback subscriber answering 204;
 * the sender is called as the worker calls it, on the job's last attempt.
 */
let t: TestDatabase;
let receiver: WebhookReceiver;
let deps: WebhookSenderDeps;
let transports: WebhookTransports;
let subscriber: (path: string) => Promise<string>;
// One failed event disables: the harm of a wrongly counted failure is plain.
startForFile(() => startWebhookSenderHarness(1), (h) => ({ t, receiver, deps, transports, subscriber } = h));

it('does not count a failure against a subscriber that answered 2xx when recording the delivery fails; the delivery stays queued and is sent again with the same event id', async () => {
  const hook = await subscriber('/took-it');
  await recordEvent(t.db, 'transfer.requested', null, { transferRequestId: 'tr-bookkeeping' });
  const [delivery] = (await drainOutbox(t.db)).webhookDeliveries;
  if (!delivery) throw new Error('no delivery made');

  const fault = await refuseWrites(t.db, {
    name: 'delivered',
    table: 'webhook_deliveries',
    operation: 'UPDATE',
    when: `NEW.state = 'delivered' AND NEW.id = '${delivery}'::uuid`,
  });
  try {
    // The last attempt: the subscriber answers 204, then our write of "delivered" is refused.
    await expect(sendWebhook(deps, transports, delivery, true)).rejects.toThrow(/delivered refused \(test fault\)/);
    expect(await fault.refusals()).toBe(1);
  } finally {
    await fault.remove();
  }
  const hits = () => receiver.received.filter((r) => r.path === '/took-it');
  expect(hits()).toHaveLength(1);

  // Not the subscriber's failure: nothing charged to it, nobody told it kept failing.
  expect(await findWebhookDelivery(t.db, delivery)).toMatchObject({ state: 'queued' });
  expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'active', consecutiveFailures: 0, lastError: null, disabledAt: null });
  const { rows: row } = await t.db.query<{ last_status: number | null; last_error: string | null }>('SELECT last_status, last_error FROM webhook_deliveries WHERE id = $1', [delivery]);
  expect(row).toEqual([{ last_status: 204, last_error: null }]);
  const notices = await t.db.query(`SELECT 1 FROM notifications WHERE type = 'webhook.disabled' AND data->>'webhookId' = $1`, [hook]);
  expect(notices.rows).toHaveLength(0);

  // Queued again (the stale sweep), it is sent again: the same event id and delivery id, so the
  // subscriber drops the duplicate.
  expect(await sendWebhook(deps, transports, delivery, true)).toBe('delivered');
  const [first, second] = hits();
  expect(hits()).toHaveLength(2);
  expect((JSON.parse(second?.body ?? '{}') as { id?: string }).id).toBe((JSON.parse(first?.body ?? '{}') as { id?: string }).id);
  expect(second?.headers['x-sob-delivery']).toBe(delivery);
  expect(await findWebhookDelivery(t.db, delivery)).toMatchObject({ state: 'delivered', attempts: 2 });
  expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'active', consecutiveFailures: 0 });
});
