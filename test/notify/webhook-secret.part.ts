import { randomBytes, randomUUID } from 'node:crypto';
import { SecretBox } from '../../src/security/secret-box';
import { insertWebhook, findWebhook, findWebhookDelivery } from '../../src/notify/webhook-repository';
import { PermanentWebhookError, sendWebhook, WebhookTransports } from '../../src/notify/webhook-sender';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

/**
 * A subscriber secret that cannot be decrypted (sealed under another SECRETS_KEY, or corrupt) is a
 * permanent failure of the delivery: recorded with its reason and counted toward disabling the
 * subscriber, not an exception that leaves the delivery `queued` for the stale sweep forever.
 */
let t: TestDatabase;
const transports = new WebhookTransports();

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  await transports.close();
  await t.drop();
});

/** A subscriber whose secret is sealed with `sealKey`, and one queued delivery for it. */
async function queuedDelivery(sealKey: SecretBox): Promise<{ webhookId: string; deliveryId: string }> {
  const webhookId = randomUUID();
  const deliveryId = randomUUID();
  await insertWebhook(t.db, {
    id: webhookId,
    url: 'http://127.0.0.1:9/hook',
    sealedSecret: sealKey.seal('whsec-0123456789abcdef', webhookId),
    events: ['case.created'],
    allowInsecureHttp: true,
    createdBy: 'test',
  });
  const { rows } = await t.db.query<{ id: string }>(`INSERT INTO outbox (type, data) VALUES ('case.created', '{}') RETURNING id`);
  await t.db.query(`INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state) VALUES ($1, $2, $3, 'queued')`, [deliveryId, webhookId, rows[0]?.id]);
  return { webhookId, deliveryId };
}

it('fails the delivery for good and counts it against the subscriber when the secret cannot be decrypted', async () => {
  const keyA = new SecretBox(randomBytes(32));
  const keyB = new SecretBox(randomBytes(32));
  const { webhookId, deliveryId } = await queuedDelivery(keyA);
  const deps = { db: t.db, secrets: keyB, timeoutMs: 1000, disableAfter: 3 };

  await expect(sendWebhook(deps, transports, deliveryId, true)).rejects.toThrow(PermanentWebhookError);

  const delivery = await findWebhookDelivery(t.db, deliveryId);
  expect(delivery?.state).toBe('failed');
  expect(delivery?.attempts).toBe(1);
  const hook = await findWebhook(t.db, webhookId);
  expect(hook?.consecutiveFailures).toBe(1);
  expect(hook?.lastError).toMatch(/secret cannot be decrypted/);
});

it('treats a corrupt sealed secret as permanent even before the last attempt', async () => {
  const key = new SecretBox(randomBytes(32));
  const { webhookId, deliveryId } = await queuedDelivery(key);
  await t.db.query(`UPDATE webhooks SET sealed_secret = 'v1.garbage' WHERE id = $1`, [webhookId]);

  await expect(sendWebhook({ db: t.db, secrets: key, timeoutMs: 1000, disableAfter: 3 }, transports, deliveryId, false)).rejects.toThrow(PermanentWebhookError);
  expect((await findWebhookDelivery(t.db, deliveryId))?.state).toBe('failed');
  expect((await findWebhook(t.db, webhookId))?.consecutiveFailures).toBe(1);
});
