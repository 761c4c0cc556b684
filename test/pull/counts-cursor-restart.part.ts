import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A query whose paging token expired mid-way (410 on its next page) starts over from page one: the
 * raw store holds each resource once, and so must the counts the case manager reads. The query's
 * pages and resources are those of the run that finished it, equal to what the EHR has, not the
 * sum of both runs. Real service, PostgreSQL, Redis and a sandbox EHR with token paging (two
 * records a page) whose clock jumps past the snapshot lifetime as the third page is asked for.
 */
let svc: TestService;
let ehr: SandboxServer | undefined;

const SNAPSHOT_TTL_MS = 60_000;
const CONDITIONS = 5;

/** The sandbox's clock: ten minutes on once the query's second next-page request arrives (its snapshot then expired). */
function sandboxNow(): number {
  const pageRequests = ehr?.requestCount('GET ~_getpages=') ?? 0;
  return Date.now() + (pageRequests >= 2 ? 10 * SNAPSHOT_TTL_MS : 0);
}

interface PullView {
  state: string;
  totals: { pages: number; resources: number; expectedMatches: number };
  sources: { resourceTypes: { query: string; pages: number; resources: number; byType: Record<string, number>; expectedMatches: number | null }[] }[];
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50' }, FAST_CLIENT);
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none', paging: 'token', defaultCount: 2, maxCount: 2, snapshotTtlMs: SNAPSHOT_TTL_MS, now: sandboxNow });
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    ...Array.from({ length: CONDITIONS }, (_, i) => ({ resourceType: 'Condition' as const, id: `c${i + 1}`, subject: { reference: 'Patient/p1' }, code: { text: `condition ${i + 1}` } })),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr?.stop()]);
});

it('counts each resource of a query once when its expired paging cursor made it start over', async () => {
  const server = ehr;
  if (!server) throw new Error('no sandbox');
  const admin = await svc.token('admin');
  const cm = await svc.token('case_manager');
  const endpoint = (await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'EHR', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
  ).json()) as { id: string };
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Ada', 'Quill', '2016-01-02') })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpoint.id, patient: { id: 'p1' } } })).status).toBe(201);
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Condition'] } })).json()) as { pullId: string };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => !['queued', 'running'].includes(p.state),
    60_000,
  );
  expect(pull.state).toBe('complete');
  // The query did start over: its third page's token had expired.
  expect(server.requests().filter((r) => r.target.includes('_getpages=') && r.status === 410)).toHaveLength(1);

  // Counted once: what the EHR has, in the pages of the run that finished the query.
  // (The child's Patient is read too, by a query of its own of one page: source-patient-query.ts.)
  const query = pull.sources.flatMap((s) => s.resourceTypes).find((q) => q.query !== 'Patient');
  expect(query).toMatchObject({ pages: 3, resources: CONDITIONS, byType: { Condition: CONDITIONS }, expectedMatches: CONDITIONS });
  expect(pull.totals).toMatchObject({ pages: 3 + 1, resources: CONDITIONS + 1 });
  const stored = await svc.service.db.query<{ resources: number; pages: number }>(
    `SELECT (SELECT count(*)::int FROM raw_resources WHERE case_id = $1 AND resource_type <> 'Patient') AS resources,
            (SELECT count(*)::int FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id WHERE t.pull_id = $2) AS pages`,
    [caseId, pullId],
  );
  // Each resource stored once; every page received kept as received (the two of the expired run too).
  expect(stored.rows[0]).toEqual({ resources: CONDITIONS, pages: 5 + 1 });
}, 120_000);
