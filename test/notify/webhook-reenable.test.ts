import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { QUEUES } from '../../queues/names';
import { enqueueWebhooks, requeueWebhooks, startSendWebhookWorker, webhookJobId, type SendWebhookPayload } from '../../queues/send-webhook';
import { bullConnectionOptions } from '../../src/redis';
import { SecretBox } from '../../src/security/secret-box';
import { enableWebhook, findWebhookDelivery, insertWebhook } from '../../src/notify/webhook-repository';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { eventually } from '../support/service';

/**
 * A subscriber's backlog queued while it was disabled gets the full retry budget once it is enabled
 * again: the job that ended without sending is run again with its attempt counters reset, so a first
 * transient 500 is retried rather than failing the delivery as its "last attempt". Real Redis and
 * PostgreSQL.
 */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const queue = new Queue<SendWebhookPayload>(QUEUES.sendWebhook, { connection: bullConnectionOptions(REDIS_URL), prefix });
const policy = { attempts: 2, backoffMs: 50 };
const statuses: number[] = [];
let answers: number[] = [];
let receiver: http.Server;
let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
  receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = answers.shift() ?? 204;
      statuses.push(status);
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await t.drop();
});

it('retries a re-enabled subscriber after a first transient 500 instead of failing the delivery', async () => {
  const secrets = new SecretBox(randomBytes(32));
  const webhookId = randomUUID();
  const deliveryId = randomUUID();
  await insertWebhook(t.db, {
    id: webhookId,
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    sealedSecret: secrets.seal('whsec-0123456789abcdef', webhookId),
    events: ['case.created'],
    allowInsecureHttp: true,
    createdBy: 'test',
  });
  await t.db.query(`UPDATE webhooks SET state = 'disabled', consecutive_failures = 3, disabled_at = now() WHERE id = $1`, [webhookId]);
  const { rows } = await t.db.query<{ id: string }>(`INSERT INTO outbox (type, data) VALUES ('case.created', '{}') RETURNING id`);
  await t.db.query(`INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state) VALUES ($1, $2, $3, 'queued')`, [deliveryId, webhookId, rows[0]?.id]);

  const { worker, close } = startSendWebhookWorker({ db: t.db, secrets, timeoutMs: 2000, disableAfter: 3 }, () => bullConnectionOptions(REDIS_URL), prefix);
  try {
    const jobId = webhookJobId(deliveryId);
    await enqueueWebhooks(queue, [deliveryId], policy);
    // Subscriber disabled: the job completes without sending; the delivery stays queued.
    await eventually(() => queue.getJobState(jobId), (s) => s === 'completed', 10_000);
    expect(statuses).toEqual([]);

    await enableWebhook(t.db, webhookId);
    answers = [500];
    await requeueWebhooks(queue, [deliveryId], policy);
    const delivered = await eventually(() => findWebhookDelivery(t.db, deliveryId), (d) => d?.state !== 'queued', 10_000);
    expect(statuses).toEqual([500, 204]);
    expect(delivered).toMatchObject({ state: 'delivered', attempts: 2 });
  } finally {
    await worker.close();
    await close();
  }
});
