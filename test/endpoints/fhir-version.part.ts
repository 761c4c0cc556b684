import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { openFixtureCase, registerOpenEndpoint } from '../support/sandbox-case';
import { openCaseIn } from '../support/opinion-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { fhirVersionFront, type FhirVersionFront } from './support/fhir-version-front';

/**
 * The service speaks FHIR R4 only (CapabilityStatement.fhirVersion,
 * https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.fhirVersion). A
 * server declaring another version is not stored silently: its registration is refused (422 naming
 * `fhirVersion` and the version), a change pointing an endpoint at one is undone, a re-read that finds
 * one is recorded and answered 422, a pull with no other source is refused (422), and pulls beside an
 * R4 source and deliveries against it fail at once, for good, naming the version, with no search
 * sent. A statement without the element keeps working. Real service, PostgreSQL, Redis and a sandbox
 * EHR behind an HTTP front that rewrites its /metadata.
 */
let svc: TestService;
let ehr: SandboxServer;
let front: FhirVersionFront;
let admin: string;
let cm: string;

interface Problem {
  status: number;
  title: string;
  detail: string;
  field?: string;
  fhirVersion?: string;
  errors?: { field: string }[];
}
interface EndpointView {
  id: string;
  baseUrl: string;
  capabilities: { fhirVersion?: string } | null;
  capabilitiesError: string | null;
}

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'care-team-a', auth: 'none' })]);
  await ehr.load(fixtureBundle('care-team-a'));
  front = await fhirVersionFront(ehr, '4.0.1');
  admin = await svc.token('admin');
  cm = await svc.token('case_manager');
}, 60_000);

afterAll(async () => {
  await front.server.close();
  await Promise.all([svc.stop(), ehr.stop()]);
});

const register = (name: string, baseUrl = front.baseUrl) =>
  svc.request('POST', '/api/endpoints', { token: admin, body: { name, baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } });
const endpointNamed = async (name: string) =>
  ((await (await svc.request('GET', '/api/endpoints', { token: admin })).json()) as { items: (EndpointView & { name: string })[] }).items.filter((e) => e.name === name);
/** Requests the front passed on since `since` (its index), besides /metadata. */
const fhirRequestsSince = (since: number) => front.server.requests.slice(since).filter((r) => !r.url.startsWith('/fhir/metadata')).map((r) => `${r.method} ${r.url.split('?')[0] ?? ''}`);

it.each(['5.0.0', '3.0.2', '4.3.0'])('refuses to register a server declaring fhirVersion %s, naming the field and the version, and keeps nothing', async (declared) => {
  front.fhirVersion = declared;
  const name = `Not R4 ${declared}`;
  const res = await register(name);
  expect(res.status).toBe(422);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const problem = (await res.json()) as Problem;
  expect(problem).toMatchObject({ status: 422, title: 'Unsupported FHIR version', field: 'fhirVersion', fhirVersion: declared });
  expect(problem.detail).toContain(`fhirVersion ${declared}`);
  expect(problem.detail).toContain('R4');
  expect(await endpointNamed(name)).toEqual([]);
});

it('registers a server whose CapabilityStatement omits fhirVersion, as before', async () => {
  front.fhirVersion = undefined;
  const res = await register('No fhirVersion');
  expect(res.status).toBe(201);
  expect((await res.json()) as EndpointView).toMatchObject({ capabilitiesError: null });
});

it('records a server that now declares R5 when its capabilities are read again (422 naming it), refuses pulls and recipients at once without searching it, and lets it back once it speaks R4', async () => {
  front.fhirVersion = '4.0.1';
  const registered = await register('Care team A (upgraded later)');
  expect(registered.status).toBe(201);
  const endpoint = (await registered.json()) as EndpointView;
  const { caseId } = await openFixtureCase(svc, cm, endpoint.id);

  front.fhirVersion = '5.0.0';
  const reread = await svc.request('POST', `/api/endpoints/${endpoint.id}/capabilities`, { token: admin });
  expect(reread.status).toBe(422);
  expect((await reread.json()) as Problem).toMatchObject({ field: 'fhirVersion', fhirVersion: '5.0.0' });
  const stored = (await (await svc.request('GET', `/api/endpoints/${endpoint.id}`, { token: admin })).json()) as EndpointView;
  expect(stored.capabilities?.fhirVersion).toBe('5.0.0');
  expect(stored.capabilitiesError).toContain('fhirVersion 5.0.0');

  // A pull of a case whose only source it is: refused (422 naming the version), nothing started or searched.
  const since = front.server.requests.length;
  const refused = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(refused.status).toBe(422);
  expect((await refused.json()) as Problem).toMatchObject({ field: 'fhirVersion', fhirVersion: '5.0.0' });
  expect((await svc.service.db.query('SELECT id FROM pulls WHERE case_id = $1', [caseId])).rows).toEqual([]);

  // Beside a source on an R4 server, the pull starts: that source's queries fail at once, for good
  // (no retry), naming the version, and nothing is searched there; the pull ends partial.
  const r4 = await registerOpenEndpoint(svc, 'Care team A (still R4)', ehr.baseUrl);
  const second = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: r4, patient: { id: fixturePatientId('care-team-a') } } });
  expect(second.status).toBe(201);
  const { id: r4Source } = (await second.json()) as { id: string };
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string },
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    60_000,
  );
  expect(pull.state).toBe('partial');
  const { rows } = await svc.service.db.query<{ source_id: string; state: string; last_error: string | null; retries: number }>(
    'SELECT source_id, state, last_error, retries FROM pull_tasks WHERE pull_id = $1',
    [pullId],
  );
  const upgraded = rows.filter((t) => t.source_id !== r4Source);
  expect(upgraded.length).toBeGreaterThan(0);
  for (const task of upgraded) {
    expect(task.state).toBe('failed');
    expect(task.retries).toBe(0);
    expect(task.last_error).toContain('fhirVersion 5.0.0');
  }
  expect(rows.filter((t) => t.source_id === r4Source).every((t) => t.state === 'complete')).toBe(true);
  expect(fhirRequestsSince(since)).toEqual([]);

  // Nor is it taken as a report recipient.
  const recipientCase = await openCaseIn(svc, cm, 'assigned');
  const recipient = await svc.request('POST', `/api/cases/${recipientCase}/recipients`, { token: cm, body: { endpointId: endpoint.id } });
  expect(recipient.status).toBe(422);
  const refusal = (await recipient.json()) as Problem;
  expect(refusal.errors?.map((e) => e.field)).toEqual(['endpointId']);
  expect(refusal.detail).toContain('fhirVersion 5.0.0');

  // Back on R4: read again, the endpoint is usable again.
  front.fhirVersion = '4.0.1';
  const fixed = await svc.request('POST', `/api/endpoints/${endpoint.id}/capabilities`, { token: admin });
  expect(fixed.status).toBe(200);
  expect((await fixed.json()) as EndpointView).toMatchObject({ capabilitiesError: null, capabilities: { fhirVersion: '4.0.1' } });
}, 120_000);

it('undoes a change pointing an endpoint at a server of another FHIR version (422), keeping its previous settings', async () => {
  front.fhirVersion = '4.0.1';
  const registered = await register('Care team A (direct)', ehr.baseUrl);
  expect(registered.status).toBe(201);
  const before = (await registered.json()) as EndpointView;
  front.fhirVersion = '3.0.2';
  const changed = await svc.request('PATCH', `/api/endpoints/${before.id}`, { token: admin, body: { baseUrl: front.baseUrl } });
  expect(changed.status).toBe(422);
  expect((await changed.json()) as Problem).toMatchObject({ field: 'fhirVersion', fhirVersion: '3.0.2' });
  const after = (await (await svc.request('GET', `/api/endpoints/${before.id}`, { token: admin })).json()) as EndpointView;
  expect(after).toMatchObject({ baseUrl: ehr.baseUrl, capabilitiesError: null, capabilities: { fhirVersion: '4.0.1' } });
}, 60_000);
