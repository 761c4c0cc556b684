import fs from 'node:fs';
import path from 'node:path';
import { startOwnRedis, type OwnRedis } from '../../drills/support/redis-server';
import { openCase, startCaseManagerService, type CaseManagerService } from '../support/case-manager';
import { SHARED_DATA } from '../support/synthea';
import { uploadAndIngest } from '../support/uploads';

/**
 * The workers take jobs again after a Redis outage longer than their blocking wait. BullMQ gives its
 * blocking read (`BZPOPMIN`, up to `drainDelay`, 5 s) a watchdog one second longer; in 6.0–6.3.2 a
 * watchdog that fired while Redis was down disconnected a client waiting to reconnect, which then never
 * reconnected: the worker took no job again, silently, until a restart (taskforcesh/bullmq#4585, fixed
 * in 6.3.3). The Redis restart drill's outages (≤ 1 s) are too short to reach it. A throwaway
 * redis-server of the test's own, killed and started again on its data.
 */
/** Longer than the watchdog of a blocking read sent just before Redis went (5 s + 1 s), with room. */
const OUTAGE_MS = 8000;

/**
 * Longer than it takes BullMQ's default reconnect schedule to reach its 20 s interval (1 s six times,
 * then 1.1, 3 and 8.1 s: ~18 s), after which a client would wait up to 20 s more once Redis is back.
 */
const LONG_OUTAGE_MS = 22_000;

/** From Redis answering again to an upload sent then being ingested, at most (a reconnect is ≤ 1 s). */
const RECOVERY_LIMIT_MS = 12_000;

async function outage(ms: number): Promise<void> {
  await redis.pause();
  // The outage's length is what is tested: there is no event to wait for instead.
  await new Promise((resolve) => setTimeout(resolve, ms));
  await redis.resume();
}

let redis: OwnRedis;
let cms: CaseManagerService;

beforeAll(async () => {
  redis = await startOwnRedis();
  cms = await startCaseManagerService({ REDIS_URL: redis.url });
}, 60_000);

afterAll(async () => {
  await cms.stop();
  await redis.stop();
});

it('ingests a family upload sent after Redis was down for longer than the workers blocking wait', async () => {
  const { svc, cm } = cms;
  const caseId = await openCase(svc, cm);

  await outage(OUTAGE_MS);

  const pdf = fs.readFileSync(path.join(SHARED_DATA, 'pdf', 'minimal-document.pdf'));
  const { upload } = await uploadAndIngest(svc, cm, caseId, [{ name: 'after-the-outage.pdf', data: pdf }]);
  expect(upload.files.map((f) => f.state)).toEqual(['parsed']);
}, 150_000);

it('takes jobs again within seconds of Redis answering after an outage longer than 20 s', async () => {
  const { svc, cm } = cms;
  const caseId = await openCase(svc, cm);

  await outage(LONG_OUTAGE_MS);
  const back = Date.now();

  // Sent at once: the queue's connection reconnects within a second, so the job is queued, not left to
  // the reconciler; the worker's blocking connection takes it as soon as it is back too.
  const pdf = fs.readFileSync(path.join(SHARED_DATA, 'pdf', 'minimal-document.pdf'));
  const { upload } = await uploadAndIngest(svc, cm, caseId, [{ name: 'after-a-long-outage.pdf', data: pdf }]);
  expect(upload.files.map((f) => f.state)).toEqual(['parsed']);
  expect(Date.now() - back).toBeLessThan(RECOVERY_LIMIT_MS);
}, 150_000);
