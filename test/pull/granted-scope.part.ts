import { notGrantedTypesBySource } from '../../src/pull/not-granted';
import { randomUUID } from 'node:crypto';
import { insertPull, insertTask, lastCompletedQueries, markTaskFinished } from '../../src/pull/pull-repository';
import { PULL_RESOURCE_TYPES } from '../../src/pull/pull-plan';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { searchPerType } from '../support/sandbox-case';
import { makeSmartClient } from '../support/smart-client';

/**
 * The scope an EHR grants a SMART Backend Services client "can be different from the scopes requested"
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5). Care team A lets this client
 * read Patients and Observations only: the pull asks for nothing else (per type, or by `$everything`'s
 * `_type`), says for each type left out that the EHR's token scope does not grant it, and completes:
 * no failed query, no partial pull, no 403 asked for. Where the scope was not known to be narrower when
 * the pull was planned, the 403s of the types not granted end their queries the same way.
 */
let svc: TestService;
let admin: string;
let cm: string;
let clients = 0;

/** What the endpoint's registration asks for: every type the pull reads, one scope each. */
const ASKED = [...PULL_RESOURCE_TYPES, 'Binary', 'Endpoint', 'Medication'].map((t) => `system/${t}.read`).join(' ');
/** What care team A grants this client. */
const GRANTED = 'system/Patient.read system/Observation.read';
const NOT_GRANTED = PULL_RESOURCE_TYPES.filter((t) => t !== 'Patient' && t !== 'Observation');

interface Message { severity: string; code: string; text: string }
interface Query { query: string; resourceType: string; state: string; pages: number; resources: number; serverMessages: Message[]; lastError: string | null }
interface PullView {
  state: string;
  failedSources: unknown[];
  assembledVersion: number | null;
  sources: { state: string; resourceTypes: Query[] }[];
}

beforeAll(async () => {
  svc = await startTestService({ JOB_LOCK_MS: '5000' }, FAST_CLIENT);
  [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
}, 60_000);
afterAll(async () => {
  await svc.stop();
});

/**
 * Care team A's child as a case's source, on an endpoint whose registration asks for {@link ASKED} while
 * the EHR lets the client be granted `allowed`; searched per type unless `everything`.
 */
async function caseOn(server: SandboxServer, allowed: string, everything: boolean, asked = ASKED): Promise<{ caseId: string; register: (scopes: string) => void }> {
  clients += 1;
  const smart = await makeSmartClient(`sob-scope-${clients}`, 'ES384');
  const register = (scopes: string): void => server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks, scopes });
  register(allowed);
  await server.load(fixtureBundle('care-team-a'));
  const res = await svc.request('POST', '/api/endpoints', {
    token: admin,
    body: { name: `Care team A (${clients})`, baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope: asked }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  const endpointId = ((await res.json()) as { id: string }).id;
  if (!everything) await searchPerType(svc, endpointId);
  const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } });
  expect(source.status).toBe(201);
  return { caseId, register };
}

async function startPull(caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(202);
  return ((await res.json()) as { pullId: string }).pullId;
}

/** The pull once it has ended and its bundle is assembled. */
async function pullEnded(caseId: string, pullId: string): Promise<PullView> {
  return eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => ['partial', 'failed'].includes(p.state) || (p.state === 'complete' && p.assembledVersion !== null),
    90_000,
  );
}

/** Runs `test` against a care team A sandbox started with `options`, stopping it after. */
async function withCareTeamA(options: Partial<Parameters<typeof startSandboxServer>[0]>, test: (server: SandboxServer) => Promise<void>): Promise<void> {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset', ...options });
  try {
    await test(server);
  } finally {
    await server.stop();
  }
}

/** The query keys the case's next incremental re-pull starts from a bound for. */
const boundsOf = async (caseId: string): Promise<string[]> => [...(await lastCompletedQueries(svc.service.db, caseId)).keys()].map((k) => k.split('|')[1] ?? '');

const queriesOf = (pull: PullView): Query[] => pull.sources.flatMap((s) => s.resourceTypes);
const notGrantedMessage = (q: Query | undefined): Message | undefined => q?.serverMessages.find((m) => m.code === 'forbidden' && m.severity === 'warning');

/** The types named in the `_type` of each `$everything` request the server received. */
function everythingTypes(server: SandboxServer): string[] {
  return server
    .requests()
    .filter((r) => r.method === 'GET' && r.target.includes('/$everything'))
    .flatMap((r) => (new URL(r.target, 'http://x').searchParams.get('_type') ?? '').split(','));
}

it('searches per type: asks only for the types granted, and says of every other one that the scope does not grant it', async () => {
  await withCareTeamA({}, async (server) => {
    const { caseId } = await caseOn(server, GRANTED, false);
    const pullId = await startPull(caseId);
    const pull = await pullEnded(caseId, pullId);
    expect(pull.state).toBe('complete');
    expect(pull.failedSources).toEqual([]);
    const queries = queriesOf(pull);
    expect(queries.filter((q) => q.state !== 'complete')).toEqual([]);
    // The types granted are pulled.
    expect(queries.filter((q) => q.resourceType === 'Observation').reduce((n, q) => n + q.resources, 0)).toBeGreaterThan(0);
    expect(queries.find((q) => q.query === 'Patient')?.resources).toBe(1);
    // Every other type: its query is there, complete, nothing fetched, the reason said.
    for (const type of NOT_GRANTED) {
      const query = queries.find((q) => q.resourceType === type);
      expect(query).toMatchObject({ state: 'complete', pages: 0, resources: 0, lastError: null });
      expect(notGrantedMessage(query)?.text).toContain(`${type} not asked for: not granted by the EHR's token scope (SMART scope granted: "${GRANTED}")`);
      expect(server.requestCount(`GET /${type}*`)).toBe(0);
    }
    // Nothing was asked that the EHR refused.
    expect(server.requests().filter((r) => r.status === 403)).toEqual([]);
    // The completeness report lists the reasons with the source's messages.
    const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as { sources: { serverMessages: Message[] }[] };
    const said = report.sources.flatMap((s) => s.serverMessages).filter((m) => m.code === 'forbidden').map((m) => m.text);
    for (const type of NOT_GRANTED) expect(said.some((t) => t.startsWith(`${type} not asked for: not granted by the EHR's token scope`))).toBe(true);
    // A query left out is no bound for the next re-pull: once granted, it is asked in full.
    const bounds = await boundsOf(caseId);
    expect(bounds).toEqual(expect.arrayContaining(['Patient', 'Observation:laboratory']));
    for (const type of NOT_GRANTED) expect(bounds).not.toContain(type);
    // The case record's sections know which types were not asked (a flag on the task, not its message).
    const [sourceId] = [...(await notGrantedTypesBySource(svc.service.db, caseId)).keys()];
    expect((await notGrantedTypesBySource(svc.service.db, caseId)).get(sourceId ?? '')).toEqual([...NOT_GRANTED].sort());
    // A later pull that asked for a type (granted since, its token renewed) decides for it: not missing any more.
    const later = randomUUID();
    await insertPull(svc.service.db, { id: later, caseId, since: null, types: ['Condition'], requestedBy: 'test' });
    const asked = randomUUID();
    await insertTask(svc.service.db, {
      id: asked, pullId: later, sourceId: sourceId ?? '', resourceType: 'Condition', queryKey: 'Condition', path: 'Condition', params: {}, remotePatientId: fixturePatientId('care-team-a'),
    });
    await markTaskFinished(svc.service.db, asked, 'complete', null);
    expect((await notGrantedTypesBySource(svc.service.db, caseId)).get(sourceId ?? '')).toEqual(NOT_GRANTED.filter((t) => t !== 'Condition').sort());
  });
}, 120_000);

it('Patient/$everything: names only the types granted in _type, and says of every other one that the scope does not grant it', async () => {
  await withCareTeamA({}, async (server) => {
    const { caseId } = await caseOn(server, GRANTED, true);
    const pullId = await startPull(caseId);
    const pull = await pullEnded(caseId, pullId);
    expect(pull.state).toBe('complete');
    const queries = queriesOf(pull);
    expect(queries.filter((q) => q.state !== 'complete')).toEqual([]);
    const asked = everythingTypes(server);
    expect(asked.length).toBeGreaterThan(0);
    expect([...new Set(asked)].sort()).toEqual(['Observation', 'Patient']);
    expect(queries.filter((q) => q.pages > 0).map((q) => q.query).sort()).toEqual(['Patient/$everything:Observation', 'Patient/$everything:Patient']);
    // The types left out, by the group of `_type` they would have been asked in, each with the reason.
    const leftOut = queries.filter((q) => notGrantedMessage(q) !== undefined);
    expect(leftOut.map((q) => q.query).sort()).toEqual([
      'Patient/$everything:AllergyIntolerance,Condition,Immunization,Procedure',
      'Patient/$everything:DiagnosticReport',
      'Patient/$everything:DocumentReference,Binary',
      'Patient/$everything:Encounter',
      'Patient/$everything:ImagingStudy,Endpoint',
      'Patient/$everything:MedicationRequest,Medication',
    ]);
    for (const q of leftOut) expect(q).toMatchObject({ state: 'complete', pages: 0, resources: 0 });
    expect(notGrantedMessage(leftOut.find((q) => q.query === 'Patient/$everything:DocumentReference,Binary'))?.text).toMatch(/^DocumentReference, Binary not asked for: not granted by the EHR's token scope/);
    expect(server.requests().filter((r) => r.status === 403)).toEqual([]);
  });
}, 120_000);

it('a type refused with 403 forbidden on its first page (the scope narrowed since the plan) ends its query complete, said as not granted', async () => {
  // The EHR's clock, moved on to expire the token the pull was planned with.
  let ahead = 0;
  await withCareTeamA({ tokenLifetimeSeconds: 60, now: () => Date.now() + ahead }, async (server) => {
    // Granted every type when the source is added (the token then cached says so) …
    const { caseId, register } = await caseOn(server, ASKED, false);
    // … then only Patients and Observations; the pull's queries wait until the cached token has expired.
    register(GRANTED);
    const hold = server.faults.add({ match: 'GET *', action: { kind: 'hold' } });
    const pullId = await startPull(caseId);
    await eventually(async () => server.faults.rule(hold)?.fired ?? 0, (fired) => fired > 0, 30_000);
    ahead = 90_000;
    server.faults.remove(hold);
    const pull = await pullEnded(caseId, pullId);
    expect(pull.state).toBe('complete');
    expect(pull.failedSources).toEqual([]);
    const queries = queriesOf(pull);
    expect(queries.filter((q) => q.state !== 'complete')).toEqual([]);
    expect(queries.filter((q) => q.resourceType === 'Observation').reduce((n, q) => n + q.resources, 0)).toBeGreaterThan(0);
    // Planned with the scope the token said then, asked, refused: each said, none failed.
    for (const type of NOT_GRANTED) {
      const query = queries.find((q) => q.resourceType === type);
      expect(query).toMatchObject({ state: 'complete', pages: 0, resources: 0, lastError: null });
      expect(notGrantedMessage(query)?.text).toBe(
        `${type} not pulled: the EHR refused the query (HTTP 403, forbidden), taken as not granted by the EHR's token scope, so such records from this source are not in the record`,
      );
    }
    expect(server.requests().filter((r) => r.status === 403).length).toBeGreaterThanOrEqual(NOT_GRANTED.length);
    const bounds = await boundsOf(caseId);
    for (const type of NOT_GRANTED) expect(bounds).not.toContain(type);
  });
}, 120_000);

/**
 * Pulls the case while the EHR refuses the requests `match` names with 403 forbidden, the grant covering
 * them: the pull ends partial and the query `which` picks failed with the 403, not said as a scope gap.
 */
async function refusedDespiteGrant(server: SandboxServer, caseId: string, match: string, which: (q: Query) => boolean): Promise<PullView> {
  server.faults.add({ match, action: { kind: 'forbidden' } });
  const pull = await pullEnded(caseId, await startPull(caseId));
  expect(pull.state).toBe('partial');
  const refused = queriesOf(pull).find(which);
  expect(refused).toMatchObject({ state: 'failed', resources: 0 });
  expect(refused?.lastError).toContain('403');
  expect(notGrantedMessage(refused)).toBeUndefined();
  return pull;
}

it('an $everything stream of one type refused with 403 forbidden under a grant to read that type (SMART v2 `.r`, no search) fails its query: not taken as a scope gap', async () => {
  // $everything reads the Patient's record: planned under `read`, so judged under `read` when refused.
  const readOnly = 'system/Patient.r system/Observation.r';
  await withCareTeamA({}, async (server) => {
    const { caseId } = await caseOn(server, readOnly, true, readOnly);
    await refusedDespiteGrant(server, caseId, 'GET ~/\\$everything\\?.*_type=Observation', (q) => q.query === 'Patient/$everything:Observation');
  });
}, 120_000);

it('a type the grant covers, refused with 403 forbidden (a consent or restriction at the EHR), fails its query: not taken as a scope gap', async () => {
  await withCareTeamA({}, async (server) => {
    const { caseId } = await caseOn(server, ASKED, false);
    const pull = await refusedDespiteGrant(server, caseId, 'GET /Condition*', (q) => q.resourceType === 'Condition');
    expect(queriesOf(pull).filter((q) => q.resourceType !== 'Condition' && q.state !== 'complete')).toEqual([]);
  });
}, 120_000);
