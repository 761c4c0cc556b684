import { Queue } from 'bullmq';
import { startForFile } from '../support/for-file';
import { startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { eventually } from '../support/service';

/**
 * A newer version waiting for an older one's write is never failed for it, not even once its job's
 * attempts are spent (DELIVERY_MAX_PAUSE_WAIT_MS 0: no waiting without spending attempts): it stays
 * `queued` saying it waits, and the older one's end queues it again. Real service, PostgreSQL, Redis
 * and a sandbox EHR whose `hold` fault keeps version 1's write in flight until the test releases it.
 */
let world: ReferringEhrWorld;
startForFile(() => startReferringEhrWorld('older-wait', { DELIVERY_MAX_PAUSE_WAIT_MS: '0' }), (w) => (world = w));

const deliveries = (caseId: string): Promise<DeliveryView[]> => world.deliveries(caseId);

it('keeps a newer version waiting, not failed, when its attempts are spent while the older one is still writing, and delivers it after', async () => {
  const { caseId } = await world.caseWithRecipient();
  // Version 1's write held at the EHR, version 2 signed meanwhile.
  const { hold, v2 } = await world.amendWhileFirstWriteHeld(caseId, 'Amended while version 1 was being written.');
  const queue = new Queue('deliver-report', { connection: { url: world.svc.config.redisUrl }, prefix: world.svc.config.queuePrefix });
  try {
    // Its job spends every attempt (no pause budget) while version 1 is held.
    await eventually(async () => queue.getJobState(`deliver-${v2.id}-0`), (state) => state === 'failed', 30_000);
    const now = await deliveries(caseId);
    expect(now.find((x) => x.version === 1)?.state).toBe('sending');
    expect(now.find((x) => x.version === 2)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(now.find((x) => x.version === 2)?.lastError).toMatch(/^waiting: version 1 is being written/);
  } finally {
    world.ehr.faults.release(hold);
    world.ehr.faults.remove(hold);
    await queue.close();
  }
  const done = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed'].includes(d.find((x) => x.version === 2)?.state ?? ''), 60_000);
  expect(done.map((d) => d.state)).toEqual(['delivered', 'delivered']);
  const [report2] = await world.reportsOf(caseId, 2);
  expect(report2?.status).toBe('amended');
}, 120_000);
