import { Queue } from 'bullmq';
import { bullConnectionOptions } from '../../src/redis';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { QUEUES } from '../../queues/names';
import { ADA_PATIENT_ID, adaIntake, adaWithPdfDocuments, OFF_ORIGIN } from '../support/documents-ehr';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A document a pull did not fetch — its download failed for good, or the pull was cancelled before it
 * came — is fetched by the next pull of the case that meets it again. Attachment rows are keyed
 * case-wide (resource, position, URL: migration 027): before, the later pull inserted nothing for it,
 * queued no download and showed `attachments 0/0`, complete, and the document was never fetched. The
 * later pull now takes the row over: its download is queued, and its progress counts it.
 * Real service, PostgreSQL, Redis and a sandbox EHR.
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

interface PullView {
  state: string;
  assembledVersion: number | null;
  totals: { attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; attachmentsPending: number };
}

beforeAll(async () => {
  // One download at a time, so that a cancel finds documents still to fetch.
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '5000', ATTACHMENT_CONCURRENCY: '1' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load(adaWithPdfDocuments(4, 'a clinic letter'));
  endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
});

async function openCase(): Promise<string> {
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: adaIntake() })).json()) as { id: string };
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: ADA_PATIENT_ID } } });
  expect(source.status).toBe(201);
  expect(await source.json()).toMatchObject({ state: 'resolved' });
  return caseId;
}

async function startPull(caseId: string): Promise<string> {
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['DocumentReference'] } });
  expect(started.status).toBe(202);
  return ((await started.json()) as { pullId: string }).pullId;
}

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

/** The pull has ended and its bundle is assembled. */
const assembled = (p: PullView): boolean => ['complete', 'partial', 'failed'].includes(p.state) && p.assembledVersion !== null;

/**
 * The case's attachment rows by the `Binary/<id>` their URL ends with (a Binary's inline data, which `$everything` brings with the
 * documents, as `inline:<id>`): state and the pull whose task holds them.
 */
async function attachmentsOf(caseId: string): Promise<Map<string, { state: string; pullId: string }>> {
  const { rows } = await svc.service.db.query<{ url: string; state: string; pull_id: string }>(
    "SELECT COALESCE(substring(a.url FROM 'Binary/[^/]+$'), 'inline:' || a.remote_id) AS url, a.state, t.pull_id FROM attachments a JOIN pull_tasks t ON t.id = a.task_id WHERE a.case_id = $1",
    [caseId],
  );
  return new Map(rows.map((r) => [r.url, { state: r.state, pullId: r.pull_id }]));
}

it('fetches in the next pull a document whose download failed in the pull before, and counts it there', async () => {
  const caseId = await openCase();
  const broken = ehr.faults.add({ match: 'GET /Binary/b2', action: OFF_ORIGIN });
  const first = await startPull(caseId);
  const firstView = await eventually(() => pullOf(caseId, first), assembled, 60_000);
  expect(firstView.state).toBe('complete');
  const found = firstView.totals.attachmentsFound;
  expect(found).toBeGreaterThanOrEqual(4);
  expect(firstView.totals).toMatchObject({ attachmentsFetched: found - 1, attachmentsFailed: 1 });
  expect((await attachmentsOf(caseId)).get('Binary/b2')).toEqual({ state: 'failed', pullId: first });

  ehr.faults.remove(broken);
  const binariesBefore = ehr.requestCount('GET /Binary/*');
  const second = await startPull(caseId);
  const secondView = await eventually(() => pullOf(caseId, second), assembled, 60_000);

  expect(secondView.state).toBe('complete');
  // The failed document is this pull's now: found, fetched; those fetched before are not fetched again.
  expect(secondView.totals).toMatchObject({ attachmentsFound: 1, attachmentsFetched: 1, attachmentsFailed: 0, attachmentsPending: 0 });
  expect(ehr.requestCount('GET /Binary/b2')).toBeGreaterThan(0);
  expect(ehr.requestCount('GET /Binary/*') - binariesBefore).toBe(1);
  const rows = await attachmentsOf(caseId);
  expect(rows.get('Binary/b2')).toEqual({ state: 'fetched', pullId: second });
  expect(rows.size).toBe(found);
  expect([...rows.values()].every((r) => r.state === 'fetched')).toBe(true);
}, 120_000);

it('fetches in the next pull the documents a cancelled pull left unfetched', async () => {
  const caseId = await openCase();
  // Slow downloads, one at a time: the pull's queries end while its documents are still to fetch.
  ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'latency', ms: 1500 } });
  const binariesAtStart = ehr.requestCount('GET /Binary/*');
  const first = await startPull(caseId);
  await eventually(() => pullOf(caseId, first), (p) => p.totals.attachmentsFound >= 4 && p.totals.attachmentsPending >= 3, 30_000);
  const cancelled = await svc.request('POST', `/api/cases/${caseId}/pulls/${first}/cancel`, { token: cm, body: { reason: 'EHR asked us to back off' } });
  expect(cancelled.status).toBe(200);
  // The download under way when it was cancelled ends (stored or not); the others are never asked.
  // Awaited as the event it is: the attachment queue holds no job running or waiting any more.
  const attachments = new Queue(QUEUES.fetchAttachment, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  try {
    await eventually(() => attachments.getJobCounts('active', 'waiting', 'delayed', 'prioritized'), (c) => Object.values(c).every((n) => n === 0), 30_000);
  } finally {
    await attachments.close();
  }
  ehr.faults.clear();
  const before = await attachmentsOf(caseId);
  const unfetched = [...before.entries()].filter(([, r]) => r.state !== 'fetched').map(([url]) => url).sort();
  // Downloads from a URL (inline data is stored without a request).
  const unfetchedUrls = unfetched.filter((url) => url.startsWith('Binary/'));
  expect(unfetchedUrls.length).toBeGreaterThanOrEqual(2);
  expect(ehr.requestCount('GET /Binary/*') - binariesAtStart).toBeLessThanOrEqual(4 - unfetchedUrls.length + 1);

  const binariesBefore = ehr.requestCount('GET /Binary/*');
  const second = await startPull(caseId);
  const secondView = await eventually(() => pullOf(caseId, second), assembled, 60_000);

  expect(secondView.state).toBe('complete');
  expect(secondView.totals).toMatchObject({ attachmentsFound: unfetched.length, attachmentsFetched: unfetched.length, attachmentsFailed: 0, attachmentsPending: 0 });
  // Each once: only those the cancelled pull left.
  expect(ehr.requestCount('GET /Binary/*') - binariesBefore).toBe(unfetchedUrls.length);
  const after = await attachmentsOf(caseId);
  expect([...after.values()].every((r) => r.state === 'fetched')).toBe(true);
  expect(unfetched.map((url) => after.get(url)?.pullId)).toEqual(unfetched.map(() => second));
}, 120_000);
