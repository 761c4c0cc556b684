import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { ADA_PATIENT_ID, adaIntake, adaWithPdfDocuments } from '../support/documents-ehr';
import { openCaseWithSource, registerOpenEndpoint } from '../support/sandbox-case';

/**
 * The pull's totals say how many documents are still to be fetched (`attachmentsPending`), as each
 * query's attachment counts do, instead of leaving the case manager to work out found − fetched −
 * failed. Real service, PostgreSQL, Redis and a sandbox EHR whose documents download slowly.
 */
let svc: TestService;
let ehr: SandboxServer;

interface Counts {
  found: number;
  fetched: number;
  failed: number;
  pending: number;
}
interface PullView {
  state: string;
  totals: { tasks: number; tasksComplete: number; attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; attachmentsPending: number };
  sources: { resourceTypes: { attachments: Counts }[] }[];
}

beforeAll(async () => {
  svc = await startTestService({ FHIR_REQUEST_TIMEOUT_MS: '10000' }, FAST_CLIENT);
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load(adaWithPdfDocuments(2, 'a clinic letter'));
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

it('counts the documents still to fetch in the totals, and per query, until they are in', async () => {
  const cm = await svc.token('case_manager');
  const endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, adaIntake(), ADA_PATIENT_ID);
  ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'latency', ms: 2000 } });
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['DocumentReference'] } })).json()) as { pullId: string };
  const pullOf = async (): Promise<PullView> => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;
  const perQuery = (p: PullView): Counts[] => p.sources.flatMap((s) => s.resourceTypes.map((t) => t.attachments));

  // Every query done, the documents still downloading.
  const waiting = await eventually(
    pullOf,
    (p) => p.totals.tasksComplete === p.totals.tasks && p.totals.attachmentsFound > 0 && p.totals.attachmentsFetched + p.totals.attachmentsFailed < p.totals.attachmentsFound,
    20_000,
  );
  const { totals } = waiting;
  expect(totals.attachmentsPending).toBeGreaterThan(0);
  expect(totals.attachmentsPending).toBe(totals.attachmentsFound - totals.attachmentsFetched - totals.attachmentsFailed);
  expect(totals.attachmentsPending).toBe(perQuery(waiting).reduce((n, a) => n + a.pending, 0));

  const done = await eventually(pullOf, (p) => !['queued', 'running'].includes(p.state), 60_000);
  expect(done.state).toBe('complete');
  expect(done.totals.attachmentsFound).toBeGreaterThanOrEqual(2);
  expect(done.totals).toMatchObject({ attachmentsFetched: done.totals.attachmentsFound, attachmentsFailed: 0, attachmentsPending: 0 });
  expect(perQuery(done).every((a) => a.pending === 0)).toBe(true);
}, 120_000);
