import { eventually, startTestService, type TestService } from '../support/service';
import { startWebhookReceiver, subscribe, type WebhookReceiver } from './webhook-support';
import { refuseWrites } from '../support/pg-fault';

/**
 * Which events a subscriber is sent, and when it stops being sent any: only events raised once it
 * subscribed (not a backlog the outbox had not drained yet), and none after it answered 410 Gone.
 * Real service, PostgreSQL, Redis and a local HTTP subscriber; events are written to the outbox as
 * the services write them (`recordEvent`), with ids only.
 */
let svc: TestService;
let receiver: WebhookReceiver;
let admin: string;
const SECRET = 'whsec-policy-0123456789abcdef0123456789ab';

beforeAll(async () => {
  receiver = await startWebhookReceiver((req, res) => {
    // A subscriber that never answers.
    if (req.url === '/hangs') return;
    res.statusCode = req.url?.startsWith('/gone') ? 410 : 204;
    res.end();
  });
  // A 3 s webhook timeout: the receiver answers in this process, and an answer held up past a shorter
  // one by a loaded host would be posted again, breaking the exactly-once counts below.
  svc = await startTestService({ WEBHOOK_ATTEMPTS: '3', WEBHOOK_BACKOFF_MS: '20', WEBHOOK_DISABLE_AFTER: '3', NOTIFY_POLL_MS: '200', WEBHOOK_TIMEOUT_MS: '3000' });
  admin = await svc.token('admin');
}, 60_000);

afterAll(async () => {
  await svc.stop();
  await receiver.close();
});

/** Writes an event to the outbox (optionally dated `createdAt`); returns its id. */
async function raise(type: string, data: Record<string, unknown>, createdAt?: Date): Promise<number> {
  const { rows } = await svc.service.db.query<{ id: string }>(
    'INSERT INTO outbox (type, case_id, data, created_at) VALUES ($1, NULL, $2, COALESCE($3::timestamptz, now())) RETURNING id',
    [type, JSON.stringify(data), createdAt ?? null],
  );
  return Number(rows[0]?.id);
}

/** Waits until the notify worker has turned the event into notifications and webhook deliveries. */
const drained = (outboxId: number) =>
  eventually(
    async () => (await svc.service.db.query<{ processed_at: Date | null }>('SELECT processed_at FROM outbox WHERE id = $1', [outboxId])).rows[0]?.processed_at ?? null,
    (at) => at !== null,
    30_000,
  );

/** The subscriber's deliveries: event (outbox id), state, attempts. */
const deliveriesOf = async (webhookId: string) =>
  (
    await svc.service.db.query<{ outbox_id: string | number; state: string; attempts: number }>(
      'SELECT outbox_id, state, attempts FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY outbox_id',
      [webhookId],
    )
  ).rows.map((d) => ({ outboxId: Number(d.outbox_id), state: d.state, attempts: d.attempts }));

it('sends a new subscriber only the events raised after it subscribed, not an outbox backlog from before', async () => {
  const hook = await subscribe(svc, admin, `${receiver.url}/fresh`, SECRET, ['report.delivered']);
  const { rows } = await svc.service.db.query<{ created_at: Date }>('SELECT created_at FROM webhooks WHERE id = $1', [hook]);
  const subscribedAt = rows[0]?.created_at ?? new Date();
  // Raised a minute before the subscription, still waiting in the outbox (the notify worker was behind).
  const before = await raise('report.delivered', { deliveryId: 'before-subscription' }, new Date(subscribedAt.getTime() - 60_000));
  const after = await raise('report.delivered', { deliveryId: 'after-subscription' });

  await receiver.next((r) => r.path === '/fresh' && r.body.includes('after-subscription'));
  await drained(before);
  expect((await deliveriesOf(hook)).map((d) => d.outboxId)).toEqual([after]);
  expect(receiver.received.filter((r) => r.path === '/fresh').map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual([`evt-${after}`]);
  expect((await svc.request('DELETE', `/api/webhooks/${hook}`, { token: admin })).status).toBe(204);
}, 60_000);

it('stops at a 410 Gone: the event is not retried, the subscriber is disabled at once and reported, and gets nothing more', async () => {
  const hook = await subscribe(svc, admin, `${receiver.url}/gone`, SECRET, ['delivery.failed']);
  const first = await raise('delivery.failed', { deliveryId: 'gone-1' });
  const view = await eventually(
    async () =>
      ((await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: { id: string; state: string; lastError: string | null }[] }).items.find(
        (w) => w.id === hook,
      ),
    (w) => w?.state === 'disabled',
    30_000,
  );
  expect(view?.lastError).toContain('410');
  // One POST, not WEBHOOK_ATTEMPTS (3); disabled after one event, not WEBHOOK_DISABLE_AFTER (3).
  expect(receiver.received.filter((r) => r.path === '/gone')).toHaveLength(1);
  expect(await deliveriesOf(hook)).toEqual([{ outboxId: first, state: 'failed', attempts: 1 }]);
  const notes = ((await (await svc.request('GET', '/api/notifications', { token: admin })).json()) as { items: { type: string; message: string; data: { webhookId?: string } }[] }).items;
  const reports = notes.filter((n) => n.type === 'webhook.disabled' && n.data.webhookId === hook);
  expect(reports).toHaveLength(1);
  expect(reports[0]?.message).toMatch(/410 Gone/);

  // Disabled: the next event is drained without a delivery for it.
  const second = await raise('delivery.failed', { deliveryId: 'gone-2' });
  await drained(second);
  expect((await deliveriesOf(hook)).map((d) => d.outboxId)).toEqual([first]);
  expect(receiver.received.filter((r) => r.path === '/gone')).toHaveLength(1);
}, 60_000);

it('disables a subscriber and tells the case managers in one transaction: when the notice cannot be written, neither the failure, nor the count, nor the disabling is', async () => {
  const hook = await subscribe(svc, admin, `${receiver.url}/gone-atomic`, SECRET, ['pull.failed']);
  // A real fault in PostgreSQL: the notice of this subscriber's disabling cannot be written. The
  // sequence counts the refused tries (nextval is not rolled back with them).
  const fault = await refuseWrites(svc.service.db, {
    name: 'notice',
    table: 'notifications',
    operation: 'INSERT',
    when: `NEW.type = 'webhook.disabled' AND NEW.data->>'webhookId' = '${hook}'`,
  });
  const refusals = () => fault.refusals();
  const webhookRow = async () =>
    (await svc.service.db.query<{ state: string; consecutive_failures: number }>('SELECT state, consecutive_failures FROM webhooks WHERE id = $1', [hook])).rows[0];
  try {
    const first = await raise('pull.failed', { pullId: 'atomic-1' });
    // Every try of the job (WEBHOOK_ATTEMPTS: 3) reached the transaction and was refused.
    await eventually(refusals, (n) => n >= 3, 30_000);
    expect(await webhookRow()).toEqual({ state: 'active', consecutive_failures: 0 });
    expect((await deliveriesOf(hook)).map((d) => [d.outboxId, d.state])).toEqual([[first, 'queued']]);
    const notices = await svc.service.db.query('SELECT 1 FROM notifications WHERE type = $1 AND data->>$2 = $3', ['webhook.disabled', 'webhookId', hook]);
    expect(notices.rows).toHaveLength(0);
  } finally {
    await fault.remove();
  }
  // The fault gone, the next event's 410 disables it, counted once, with its notice.
  await raise('pull.failed', { pullId: 'atomic-2' });
  await eventually(webhookRow, (w) => w?.state === 'disabled', 30_000);
  expect(await webhookRow()).toEqual({ state: 'disabled', consecutive_failures: 1 });
  const notices = await svc.service.db.query('SELECT 1 FROM notifications WHERE type = $1 AND data->>$2 = $3', ['webhook.disabled', 'webhookId', hook]);
  expect(notices.rows).toHaveLength(1);
}, 60_000);

it("says a subscriber that does not answer in time did not answer (not a 'FHIR request' failure)", async () => {
  const hook = await subscribe(svc, admin, `${receiver.url}/hangs`, SECRET, ['transfer.requested']);
  await raise('transfer.requested', { caseId: 'hangs-1' });
  const view = await eventually(
    async () =>
      ((await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: { id: string; consecutiveFailures: number; lastError: string | null }[] }).items.find(
        (w) => w.id === hook,
      ),
    (w) => (w?.consecutiveFailures ?? 0) > 0,
    30_000,
  );
  expect(view?.lastError).toMatch(/^subscriber did not answer: /);
  expect((await svc.request('DELETE', `/api/webhooks/${hook}`, { token: admin })).status).toBe(204);
}, 60_000);
