import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { openFixtureCase, registerOpenEndpoint, searchPerType } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A strict server takes only the search parameters its CapabilityStatement declares for a type
 * (CapabilityStatement.rest.resource.searchParam; anything else: 400, https://hl7.org/fhir/R4/search.html#errors).
 * Care team A declares `subject` but not `patient` for Condition, `patient` without `_lastUpdated` for
 * Encounter, `patient` and `_lastUpdated` for Procedure, and every parameter it evaluates for the other
 * types. The pull names the child by `subject` where `patient` is not declared, asks for what changed
 * (`_lastUpdated`) only where that is declared (else in full, records received again stored once), and
 * keeps asking as before where a type's parameters are not listed. No query fails.
 *
 * Observations: care team A declares every parameter it evaluates, `category` among them, and is asked
 * by category (five queries, observation-categories.ts); a second server with the same record declares
 * Observation's without `category` (and refuses it) and is asked once, without it.
 */
let svc: TestService;
let server: SandboxServer;
/** Care team A's record behind a server declaring Observation search parameters without `category`. */
let noCategory: SandboxServer;
let cm: string;
const childId = fixturePatientId('care-team-a');

const DECLARED = {
  Condition: ['subject', 'code', 'clinical-status'],
  Encounter: ['patient', 'subject', 'date'],
  Procedure: ['patient', 'date', '_lastUpdated'],
};
const NO_CATEGORY = { Observation: ['patient', 'subject', 'code', 'date', '_lastUpdated'] };

interface Query { query: string; resourceType: string; state: string; pages: number; resources: number; lastError: string | null }
interface PullView { state: string; failedSources: unknown[]; sources: { resourceTypes: Query[] }[] }

beforeAll(async () => {
  [svc, server, noCategory] = await Promise.all([
    startTestService({ JOB_LOCK_MS: '5000' }, FAST_CLIENT),
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', searchParams: DECLARED }),
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', searchParams: NO_CATEGORY }),
  ]);
  await Promise.all([server.load(fixtureBundle('care-team-a')), noCategory.load(fixtureBundle('care-team-a'))]);
  cm = await svc.token('case_manager');
}, 60_000);
afterAll(async () => {
  await Promise.all([svc?.stop(), server?.stop(), noCategory?.stop()]);
});

/** A case on care team A's child at `at` (care team A by default), its endpoint searched per type (`$everything` switched off). */
async function openCase(at: SandboxServer = server): Promise<string> {
  const endpointId = await registerOpenEndpoint(svc, at === server ? 'Care team A' : 'Care team A (no category)', at.baseUrl);
  await searchPerType(svc, endpointId);
  return (await openFixtureCase(svc, cm, endpointId)).caseId;
}

async function pull(caseId: string, body: object): Promise<PullView> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body });
  expect(res.status).toBe(202);
  const { pullId } = (await res.json()) as { pullId: string };
  return eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    90_000,
  );
}

/** The parameters of the searches of `type` the server (`at`, care team A by default) received since `from` (index in its request log). */
function searchesOf(type: string, from: number, at: SandboxServer = server): URLSearchParams[] {
  return at
    .requests()
    .slice(from)
    .filter((r) => r.method === 'GET' && r.target.split('?')[0] === `/${type}`)
    .map((r) => new URL(r.target, 'http://x').searchParams);
}

async function storedCount(caseId: string, type: string): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1 AND resource_type = $2', [caseId, type]);
  return rows[0]?.n ?? 0;
}

it('the sandbox is strict: a parameter it does not declare is answered 400', async () => {
  const res = await fetch(`${server.baseUrl}/Condition?patient=Patient/${childId}`);
  expect(res.status).toBe(400);
  expect(((await res.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('not-supported');
  expect((await fetch(`${server.baseUrl}/Condition?subject=Patient/${childId}`)).status).toBe(200);
  const metadata = (await (await fetch(`${server.baseUrl}/metadata`)).json()) as { rest: { resource: { type: string; searchParam?: { name: string }[] }[] }[] };
  const condition = metadata.rest[0]?.resource.find((r) => r.type === 'Condition');
  expect(condition?.searchParam?.map((p) => p.name).sort()).toEqual([...DECLARED.Condition].sort());
});

it('names the child by the parameter declared, and asks for what changed only where _lastUpdated is declared', async () => {
  const caseId = await openCase();
  const types = ['Condition', 'Encounter', 'Procedure', 'Immunization'];
  let from = server.requests().length;
  const first = await pull(caseId, { types });
  expect(first.state).toBe('complete');
  expect(first.failedSources).toEqual([]);
  expect(first.sources.flatMap((s) => s.resourceTypes).filter((q) => q.state !== 'complete')).toEqual([]);
  const condition = searchesOf('Condition', from);
  expect(condition.length).toBeGreaterThan(0);
  for (const params of condition) {
    expect(params.get('subject')).toBe(`Patient/${childId}`);
    expect(params.has('patient')).toBe(false);
  }
  for (const type of ['Encounter', 'Procedure', 'Immunization']) {
    for (const params of searchesOf(type, from)) expect(params.get('patient')).toBe(`Patient/${childId}`);
  }
  // Every Condition of the child is there (the fixture holds six).
  expect(await storedCount(caseId, 'Condition')).toBe(6);

  // A pull of what changed since an instant: `_lastUpdated` where declared (Procedure) or nothing is
  // declared (Immunization); in full where the type's parameters leave it out (Condition, Encounter).
  from = server.requests().length;
  const since = '2020-01-01T00:00:00Z';
  const again = await pull(caseId, { types, since });
  expect(again.state).toBe('complete');
  expect(again.sources.flatMap((s) => s.resourceTypes).filter((q) => q.state !== 'complete')).toEqual([]);
  for (const type of ['Condition', 'Encounter']) {
    const searches = searchesOf(type, from);
    expect(searches.length).toBeGreaterThan(0);
    for (const params of searches) expect(params.has('_lastUpdated')).toBe(false);
  }
  for (const type of ['Procedure', 'Immunization']) {
    const searches = searchesOf(type, from);
    expect(searches.length).toBeGreaterThan(0);
    for (const params of searches) expect(params.get('_lastUpdated')).toBe(`gt${since}`);
  }
  // Asked in full again: each Condition came back, and is stored once.
  expect(again.sources.flatMap((s) => s.resourceTypes).find((q) => q.resourceType === 'Condition')?.resources).toBe(6);
  expect(await storedCount(caseId, 'Condition')).toBe(6);
}, 120_000);

/** The fixture child's Observations at care team A (all of them laboratory or vital signs). */
const FIXTURE_OBSERVATIONS = (fixtureBundle('care-team-a').entry ?? []).filter(
  (e) => e.resource?.resourceType === 'Observation' && e.resource.subject?.reference === `Patient/${childId}`,
).length;

/** The names, modifier aside, of the parameters of a search. */
const names = (params: URLSearchParams): string[] => [...new Set([...params.keys()].map((k) => k.split(':', 1)[0] ?? k))];

describe('Observations', () => {
  it('asks a server declaring category by category: five queries', async () => {
    const caseId = await openCase();
    const from = server.requests().length;
    const pulled = await pull(caseId, { types: ['Observation'] });
    expect(pulled.state).toBe('complete');
    const observations = pulled.sources.flatMap((s) => s.resourceTypes).filter((q) => q.resourceType === 'Observation');
    expect(observations.map((q) => [q.query, q.state]).sort()).toEqual(
      ['Observation:laboratory', 'Observation:no-category', 'Observation:other-categories', 'Observation:unlisted-categories', 'Observation:vital-signs'].map((k) => [k, 'complete']),
    );
    // Each query's first page (all of its pages on one: `_count=500`).
    const searches = searchesOf('Observation', from);
    expect(searches).toHaveLength(5);
    for (const params of searches) expect(names(params)).toContain('category');
    expect(await storedCount(caseId, 'Observation')).toBe(FIXTURE_OBSERVATIONS);
  }, 120_000);

  it('asks a server declaring Observation parameters without category once, without it, and stores every Observation', async () => {
    // It refuses the parameter (https://hl7.org/fhir/R4/search.html#errors): asked by category, the pull would fail.
    expect((await fetch(`${noCategory.baseUrl}/Observation?patient=Patient/${childId}&category=laboratory`)).status).toBe(400);
    const caseId = await openCase(noCategory);
    const from = noCategory.requests().length;
    const pulled = await pull(caseId, { types: ['Observation'] });
    expect(pulled.state).toBe('complete');
    expect(pulled.failedSources).toEqual([]);
    const observations = pulled.sources.flatMap((s) => s.resourceTypes).filter((q) => q.resourceType === 'Observation');
    expect(observations).toEqual([expect.objectContaining({ query: 'Observation:all', state: 'complete', pages: 1, resources: FIXTURE_OBSERVATIONS, lastError: null })]);
    const searches = searchesOf('Observation', from, noCategory);
    expect(searches).toHaveLength(1);
    expect(names(searches[0] ?? new URLSearchParams()).sort()).toEqual(['_count', 'patient']);
    expect(searches[0]?.get('patient')).toBe(`Patient/${childId}`);
    expect(await storedCount(caseId, 'Observation')).toBe(FIXTURE_OBSERVATIONS);
    expect(FIXTURE_OBSERVATIONS).toBe(177);
  }, 120_000);
});
