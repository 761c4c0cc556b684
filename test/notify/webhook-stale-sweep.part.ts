import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { QUEUES } from '../../queues/names';
import { sweepLostWebhooks, webhookJobId, type SendWebhookPayload } from '../../queues/send-webhook';
import type { Database } from '../../src/db/database';
import { insertWebhook } from '../../src/notify/webhook-repository';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * The stale sweep of webhook deliveries cannot stall: 250 queued deliveries of a flaky subscriber F,
 * each with its job alive in Redis (delayed, waiting out its backoff: re-adding it does nothing),
 * and one queued delivery of a healthy subscriber H whose job Redis lost. The sweep takes 200 at a
 * time; before, every sweep took the same 200 of F and H's event was never sent. Real PostgreSQL and
 * Redis (own queue prefix).
 */
const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const queue = new Queue<SendWebhookPayload>(QUEUES.sendWebhook, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
const policy = { attempts: 15, backoffMs: 5000 };
let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  await queue.close();
  await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  await t.drop();
});

async function subscriber(db: Database): Promise<string> {
  const id = randomUUID();
  await insertWebhook(db, { id, url: 'https://hooks.example.org/h', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' });
  return id;
}

/** `n` queued deliveries of `webhookId`, raised `minutesAgo` minutes ago (one event each); their ids, in insertion order. */
async function queuedDeliveries(db: Database, webhookId: string, n: number, minutesAgo: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `WITH events AS (
       INSERT INTO outbox (type, data, created_at, processed_at)
       SELECT 'transfer.requested', '{}', now() - make_interval(mins => $2::int), now() FROM generate_series(1, $1::int)
       RETURNING id, created_at)
     INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state, created_at)
     SELECT gen_random_uuid(), $3, id, 'queued', created_at FROM events ORDER BY id
     RETURNING id`,
    [n, minutesAgo, webhookId],
  );
  return rows.map((r) => r.id);
}

it("queues again a healthy subscriber's lost delivery behind 250 of a flaky one's still retrying", async () => {
  const flaky = await subscriber(t.db);
  const healthy = await subscriber(t.db);
  // F's deliveries are the oldest and come first on disk; H's lost one comes after them.
  const retrying = await queuedDeliveries(t.db, flaky, 250, 120);
  const [lost] = await queuedDeliveries(t.db, healthy, 1, 30);
  if (lost === undefined) throw new Error('no delivery');
  // F's jobs are alive in Redis, delayed (waiting out their backoff).
  await queue.addBulk(retrying.map((id) => ({ name: 'send', data: { webhookDeliveryId: id }, opts: { jobId: webhookJobId(id), delay: 3_600_000, attempts: policy.attempts } })));

  const swept: string[][] = [];
  for (let i = 0; i < 3 && (await queue.getJobState(webhookJobId(lost))) === 'unknown'; i++) {
    swept.push(await sweepLostWebhooks(t.db, queue, 60_000, policy));
  }
  expect(await queue.getJobState(webhookJobId(lost))).toBe('waiting');
  expect(swept.length).toBeLessThanOrEqual(2);
  // F's jobs were left as they were: still delayed, none doubled.
  expect(await queue.getDelayedCount()).toBe(250);
  expect(await queue.getWaitingCount()).toBe(1);

  // Every stale delivery was looked at once; the next sweep within the stale window takes none of them again.
  expect(new Set(swept.flat()).size).toBe(251);
  expect(await sweepLostWebhooks(t.db, queue, 60_000, policy)).toEqual([]);
});
