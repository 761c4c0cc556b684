import { Queue } from 'bullmq';
import type { DiagnosticReport } from 'fhir/r4';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle } from '../support/fixture-child';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A newer version waiting for an older one's write is never failed for it, not even once its job's
 * attempts are spent (DELIVERY_MAX_PAUSE_WAIT_MS 0: no waiting without spending attempts): it stays
 * `queued` saying it waits, and the older one's end queues it again. Real service, PostgreSQL, Redis
 * and a sandbox EHR whose `hold` fault keeps version 1's write in flight until the test releases it.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let specialist: string;
let endpointId: string;

interface DeliveryView { id: string; version: number; state: string; attempts: number; lastError: string | null; remoteIds: Record<string, string> }

beforeAll(async () => {
  [svc, ehr] = await Promise.all([
    startTestService({ DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3', NOTIFY_POLL_MS: '200', DELIVERY_MAX_PAUSE_WAIT_MS: '0' }, FAST_CLIENT),
    startSandboxServer({ name: 'referring-ehr', auth: 'none', paging: 'offset' }),
  ]);
  await ehr.load(fixtureBundle('referring-ehr'));
  cm = await svc.token('case_manager', 'cm-older-wait');
  specialist = await svc.token('specialist', 'spec-older-wait');
  endpointId = await registerOpenEndpoint(svc, 'Referring EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

const deliveries = async (caseId: string): Promise<DeliveryView[]> =>
  ((await (await svc.request('GET', `/api/cases/${caseId}/deliveries`, { token: cm })).json()) as { items: DeliveryView[] }).items;

async function sign(caseId: string, followUp?: string): Promise<void> {
  const body = opinionFor(referredIntake(), followUp ? { followUp } : {});
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
}

it('keeps a newer version waiting, not failed, when its attempts are spent while the older one is still writing, and delivers it after', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);
  const hold = ehr.faults.add({ match: 'POST *', action: { kind: 'hold' }, nth: 1 });
  const queue = new Queue('deliver-report', { connection: { url: svc.config.redisUrl }, prefix: svc.config.queuePrefix });
  try {
    await sign(caseId);
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    await sign(caseId, 'Amended while version 1 was being written.');
    const v2 = (await eventually(() => deliveries(caseId), (d) => d.some((x) => x.version === 2), 30_000)).find((x) => x.version === 2) as DeliveryView;
    // Its job spends every attempt (no pause budget) while version 1 is held.
    await eventually(async () => queue.getJobState(`deliver-${v2.id}-0`), (state) => state === 'failed', 30_000);
    const now = await deliveries(caseId);
    expect(now.find((x) => x.version === 1)?.state).toBe('sending');
    expect(now.find((x) => x.version === 2)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(now.find((x) => x.version === 2)?.lastError).toMatch(/^waiting: version 1 is being written/);
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
    await queue.close();
  }
  const done = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed'].includes(d.find((x) => x.version === 2)?.state ?? ''), 60_000);
  expect(done.map((d) => d.state)).toEqual(['delivered', 'delivered']);
  const [report2] = await searchSandbox<DiagnosticReport>(ehr, 'none', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v2` });
  expect(report2?.status).toBe('amended');
}, 120_000);
