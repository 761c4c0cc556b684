import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { ADA_PATIENT_ID, adaIntake, adaWithPdfDocuments, OFF_ORIGIN } from '../support/documents-ehr';
import { openCaseWithSource, registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A pull whose queries all completed but some of whose documents could not be downloaded ends
 * `complete` ("attachments 4/6, 2 failed"): the case manager retries it, only those documents are
 * fetched again (no query is asked again), the pull shows it is under way meanwhile, and the case
 * bundle is assembled again. A complete pull with nothing failed has nothing to retry (409).
 * Real service, PostgreSQL, Redis and a sandbox EHR.
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

interface PullView {
  state: string;
  attempt: number;
  assembledVersion: number | null;
  totals: { tasks: number; tasksComplete: number; attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; attachmentsPending: number };
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '5000' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load(adaWithPdfDocuments(3, 'a discharge summary'));
  endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
});

async function pulledCase(): Promise<{ caseId: string; pullId: string }> {
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, adaIntake(), ADA_PATIENT_ID);
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['DocumentReference'] } });
  expect(started.status).toBe(202);
  return { caseId, pullId: ((await started.json()) as { pullId: string }).pullId };
}

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

/** The pull has ended and its latest attempt's bundle is assembled. */
const assembled = (p: PullView): boolean => ['complete', 'partial', 'failed'].includes(p.state) && p.assembledVersion !== null;

const caseStatus = async (caseId: string): Promise<string> =>
  ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status;

it('re-fetches only the failed documents of a complete pull, shows it running meanwhile, and assembles the bundle again', async () => {
  const broken = [2, 3].map((n) => ehr.faults.add({ match: `GET /Binary/b${n}`, action: OFF_ORIGIN }));
  const { caseId, pullId } = await pulledCase();
  const first = await eventually(() => pullOf(caseId, pullId), assembled, 60_000);
  expect(first).toMatchObject({ state: 'complete', attempt: 1 });
  // The two documents behind a URL that failed; the rest (the one that came, the Binaries' inline data) fetched.
  const found = first.totals.attachmentsFound;
  expect(first.totals).toMatchObject({ attachmentsFetched: found - 2, attachmentsFailed: 2 });
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete', 30_000);
  const versionBefore = first.assembledVersion ?? 0;

  for (const rule of broken) ehr.faults.remove(rule);
  // Each download now takes a while, so the retry can be seen under way.
  ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'latency', ms: 1500 } });
  const requestsBefore = ehr.requestCount();
  const binariesBefore = ehr.requestCount('GET /Binary/*');
  const retried = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
  expect(retried.status).toBe(202);
  expect(await retried.json()).toMatchObject({ pullId, attempt: 2, tasks: 0 });

  // Under way while the documents are fetched: running (not queued until the assembly), two pending.
  const underWay = await eventually(() => pullOf(caseId, pullId), (p) => p.state === 'running' || assembled(p), 20_000);
  expect(underWay).toMatchObject({ state: 'running', attempt: 2, assembledVersion: null });
  expect(underWay.totals.attachmentsFailed).toBe(0);
  expect(underWay.totals.attachmentsFetched + underWay.totals.attachmentsPending).toBe(found);
  expect(underWay.totals.attachmentsPending).toBeGreaterThan(0);

  const done = await eventually(() => pullOf(caseId, pullId), assembled, 60_000);
  expect(done).toMatchObject({ state: 'complete', attempt: 2 });
  expect(done.totals).toMatchObject({ attachmentsFound: found, attachmentsFetched: found, attachmentsFailed: 0, attachmentsPending: 0 });
  expect(done.assembledVersion).toBeGreaterThan(versionBefore);
  // Only the two failed documents were asked for: no query ran again.
  expect(ehr.requestCount('GET /Binary/*') - binariesBefore).toBe(2);
  expect(ehr.requestCount() - requestsBefore).toBe(2);
  const { rows } = await svc.service.db.query<{ trigger: string }>('SELECT trigger FROM case_bundles WHERE case_id = $1 ORDER BY version', [caseId]);
  expect(rows.map((r) => r.trigger)).toEqual([`pull:${pullId}:1`, `pull:${pullId}:2`]);
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete', 30_000);
}, 120_000);

it('refuses to retry a complete pull none of whose documents failed: there is nothing to retry', async () => {
  const { caseId, pullId } = await pulledCase();
  const pull = await eventually(() => pullOf(caseId, pullId), assembled, 60_000);
  expect(pull.state).toBe('complete');
  expect(pull.totals.attachmentsFailed).toBe(0);
  const requestsBefore = ehr.requestCount();

  const res = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
  expect(res.status).toBe(409);
  expect(((await res.json()) as { detail: string }).detail).toMatch(/nothing to retry/);
  expect(await pullOf(caseId, pullId)).toMatchObject({ state: 'complete', attempt: 1 });
  expect(ehr.requestCount()).toBe(requestsBefore);
}, 120_000);
