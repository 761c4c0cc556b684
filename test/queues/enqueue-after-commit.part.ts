import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { startOwnRedis, type OwnRedis } from '../../drills/support/redis-server';
import { deliveryJobId } from '../../queues/deliver-report';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions } from '../../src/redis';
import type { SandboxServer } from '../../src/sandbox';
import { startService, type RunningService } from '../../src/service';
import { caseReadyToSign, startServiceAndReferringEhr } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';

/**
 * A committed change answers even when Redis does not: an API process started while its Redis was
 * down (BullMQ producers wait for a first connection before any command, so an add hangs until Redis
 * returns) signs an opinion and records a transfer request within a few seconds, and the delivery is
 * queued and made once Redis is back. A throwaway redis-server of the test's own, killed meanwhile.
 */
let redis: OwnRedis;
let svc: TestService;
let ehr: SandboxServer;
let api: RunningService | undefined;

beforeAll(async () => {
  redis = await startOwnRedis();
  ({ svc, ehr } = await startServiceAndReferringEhr({ env: { REDIS_URL: redis.url, NOTIFY_POLL_MS: '500', DELIVERY_BACKOFF_MS: '50' }, overrides: {} }));
}, 60_000);

afterAll(async () => {
  await api?.stop();
  await Promise.all([svc.stop(), ehr.stop()]);
  await redis.stop();
});

/** Whether the throwaway Redis answers a PING now. */
async function redisAnswers(): Promise<boolean> {
  const probe = new IORedis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

it('signs an opinion and records a transfer request while Redis is down, and the delivery goes out once it is back', async () => {
  const { caseId, cm, specialist } = await caseReadyToSign(svc, ehr, 'spec-redis-down');

  // Redis goes away until the test brings it back; an API process starts meanwhile (its producers
  // never connected). Before, signing waited for Redis: with Redis down until the calls answer, the
  // test would never get past them.
  await redis.pause();
  expect(await redisAnswers()).toBe(false);
  api = await startService({ ...svc.config, role: 'api', port: 0 });
  const call = async (method: string, route: string, token: string, body?: unknown) => {
    const res = await fetch(`${api?.url ?? ''}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };

  const signed = await call('POST', `/api/cases/${caseId}/opinion/sign`, specialist);
  expect(signed.status).toBe(201);
  const transfer = await call('POST', `/api/cases/${caseId}/transfer-request`, cm, {
    reason: 'The family moved closer to the hospital',
    destination: { organization: 'Children’s Hospital' },
  });
  expect(transfer.status).toBe(201);
  expect(await redisAnswers()).toBe(false);

  // Redis is back: the delivery job is there and the report reaches the recipient.
  await redis.resume();
  const { rows } = await svc.service.db.query<{ id: string }>('SELECT id FROM deliveries WHERE case_id = $1', [caseId]);
  expect(rows).toHaveLength(1);
  const deliveryId = rows[0]?.id ?? '';
  const queue = new Queue(QUEUES.deliverReport, { connection: bullConnectionOptions(redis.url), prefix: svc.config.queuePrefix });
  try {
    await eventually(() => queue.getJobState(deliveryJobId(deliveryId, 0)), (s) => s !== 'unknown', 60_000);
  } finally {
    await queue.close();
  }
  await eventually(
    async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM deliveries WHERE id = $1', [deliveryId])).rows[0]?.state,
    (s) => s === 'delivered',
    60_000,
  );
}, 150_000);
