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

  await redis.pause();
  // The outage's length is what is tested: there is no event to wait for instead.
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
  await redis.resume();

  const pdf = fs.readFileSync(path.join(SHARED_DATA, 'pdf', 'minimal-document.pdf'));
  const { upload } = await uploadAndIngest(svc, cm, caseId, [{ name: 'after-the-outage.pdf', data: pdf }]);
  expect(upload.files.map((f) => f.state)).toEqual(['parsed']);
}, 150_000);
