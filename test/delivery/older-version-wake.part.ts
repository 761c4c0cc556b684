import { Queue } from 'bullmq';
import { startForFile } from '../support/for-file';
import { startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { eventually } from '../support/service';

/**
 * A newer version woken when the older one it waited for ends runs with its job's attempts and pause
 * budget whole: waiting spent them (past `DELIVERY_MAX_PAUSE_WAIT_MS`, the job failed waiting), and
 * one 503 on its first write must not fail it for good. Real service, PostgreSQL, Redis and a sandbox
 * EHR whose `hold` fault keeps version 1's write in flight until the test releases it.
 */
let world: ReferringEhrWorld;
startForFile(() => startReferringEhrWorld('older-wake', { DELIVERY_MAX_PAUSE_WAIT_MS: '300' }), (w) => (world = w));

const deliveries = (caseId: string): Promise<DeliveryView[]> => world.deliveries(caseId);

it('runs a newer version woken after waiting past its pause budget with its attempts whole: one 503 on its write does not fail it', async () => {
  const { caseId } = await world.caseWithRecipient();
  // Version 1's write held at the EHR, version 2 signed meanwhile.
  const { hold, v2 } = await world.amendWhileFirstWriteHeld(caseId, 'Amended while version 1 was being written.');
  const queue = new Queue('deliver-report', { connection: { url: world.svc.config.redisUrl }, prefix: world.svc.config.queuePrefix });
  let unavailable = 0;
  try {
    // Its pause budget (300 ms) runs out while version 1 is held, then every attempt is spent waiting.
    const jobId = `deliver-${v2.id}-0`;
    await eventually(async () => queue.getJobState(jobId), (state) => state === 'failed', 30_000);
    const failed = await queue.getJob(jobId);
    expect(failed?.attemptsMade).toBe(3);
    expect(failed?.data).toHaveProperty('pausedSince');
    expect((await deliveries(caseId)).find((x) => x.version === 2)).toMatchObject({ state: 'queued', attempts: 0 });

    // The next write after version 1's (version 2's first) meets a 503 on every try of its request.
    unavailable = world.ehr.faults.add({ match: 'POST *', action: { kind: 'unavailable' }, from: 1, to: 5 });
  } finally {
    world.ehr.faults.release(hold);
    world.ehr.faults.remove(hold);
  }
  try {
    const done = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed'].includes(d.find((x) => x.version === 2)?.state ?? ''), 60_000);
    expect(world.ehr.faults.rule(unavailable)?.fired ?? 0).toBeGreaterThan(0);
    expect(done.map((d) => d.state)).toEqual(['delivered', 'delivered']);
    expect(done.find((x) => x.version === 2)?.attempts).toBeGreaterThanOrEqual(2);
    const job = await queue.getJob(`deliver-${done.find((x) => x.version === 2)?.id ?? ''}-0`);
    expect(job?.data).not.toHaveProperty('pausedSince');
  } finally {
    world.ehr.faults.remove(unavailable);
    await queue.close();
  }
  const [report2] = await world.reportsOf(caseId, 2);
  expect(report2?.status).toBe('amended');
}, 120_000);
