import { loadConfig } from '../../src/config';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { sampleIntake } from '../support/intake';
import { ReviewClient } from '../support/review-case';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * A specialist opens only what the assignment lets them: once a case is assigned to a specialist the
 * directory binds to a token subject, other specialists are refused (the default); with
 * SPECIALIST_CASE_ACCESS=assigned they see nothing but their own assigned cases. An EHR client bound
 * to an endpoint (inboundSubject) sees only the cases that endpoint is a source or recipient of
 * (EHR_CASE_ACCESS=linked: unbound clients see none). Admins and case managers are not limited.
 * Real service, PostgreSQL, Redis and a sandbox EHR.
 */
const ENDO = '2080P0205X';

interface World {
  readonly svc: TestService;
  readonly cm: ReviewClient;
  readonly admin: string;
}

async function world(env: Record<string, string> = {}): Promise<World> {
  const svc = await startTestService(env);
  return { svc, cm: new ReviewClient(svc, await svc.token('case_manager', 'cm-access')), admin: await svc.token('admin', 'admin-access') };
}

/** A paid case with complete records, assigned to `specialistId` when given. */
async function caseFor(w: World, specialistId?: string): Promise<string> {
  const id = await w.cm.openCase(sampleIntake());
  await w.cm.recordsComplete(id);
  await w.cm.pay(id, 85000);
  if (specialistId) {
    const res = await w.cm.json('POST', `/api/cases/${id}/assignment`, { specialistId });
    expect(res.status).toBe(201);
  }
  return id;
}

async function statusAs(w: World, sub: string, route: string): Promise<{ status: number; detail?: string }> {
  const res = await w.svc.request('GET', route, { token: await w.svc.token('specialist', sub) });
  // A problem+json `detail`, or on FHIR routes the OperationOutcome's diagnostics.
  const body = (await res.json().catch(() => ({}))) as { detail?: string; issue?: { diagnostics?: string }[] };
  const detail = body.detail ?? body.issue?.[0]?.diagnostics;
  return { status: res.status, ...(detail ? { detail } : {}) };
}

describe('default: refused once the case is assigned to another (bound) specialist', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  }, 60_000);
  afterAll(async () => {
    await w.svc.stop();
  });

  it('lets any specialist open an unassigned case, and only the bound one an assigned case', async () => {
    const unassigned = await caseFor(w);
    expect((await statusAs(w, 'dr-anyone', `/api/cases/${unassigned}`)).status).toBe(200);

    const bound = await w.cm.addSpecialist(w.admin, 'Bound', [ENDO], 'dr-bound');
    const id = await caseFor(w, bound);
    expect((await statusAs(w, 'dr-bound', `/api/cases/${id}`)).status).toBe(200);
    expect((await statusAs(w, 'dr-bound', `/api/cases/${id}/opinion`)).status).toBe(200);
    for (const route of [`/api/cases/${id}`, `/api/cases/${id}/opinion`, `/api/cases/${id}/completeness`, `/api/cases/${id}/bundle`, `/api/cases/${id}/uploads`]) {
      expect({ route, ...(await statusAs(w, 'dr-other', route)) }).toEqual({ route, status: 403, detail: 'This case is assigned to another specialist.' });
    }
    // Staff are not limited; a token with specialist and case manager roles acts as a case manager.
    expect((await w.svc.request('GET', `/api/cases/${id}`, { token: await w.svc.token('case_manager', 'cm-2') })).status).toBe(200);
    expect((await w.svc.request('GET', `/api/cases/${id}`, { token: await w.svc.token(['specialist', 'case_manager'], 'dr-cm') })).status).toBe(200);
    // A malformed case id is the route's 400, not a refusal.
    expect((await statusAs(w, 'dr-other', '/api/cases/not-a-uuid')).status).toBe(400);
  });

  it('keeps an access log of the case for the privacy officer: who, which route, what answer', async () => {
    const bound = await w.cm.addSpecialist(w.admin, 'Logged', [ENDO], 'dr-logged');
    const id = await caseFor(w, bound);
    expect((await statusAs(w, 'dr-logged', `/api/cases/${id}/completeness`)).status).toBe(200); // allowed
    expect((await statusAs(w, 'dr-snoop', `/api/cases/${id}/completeness`)).status).toBe(403);
    // The same case by its id in upper case (the database takes it): logged against the case all the same.
    expect((await statusAs(w, 'dr-logged', `/api/cases/${id.toUpperCase()}`)).status).toBe(200);
    // And by its path in upper case: express matches routes ignoring case, so the same handler answers it.
    expect((await statusAs(w, 'dr-logged', `/API/CASES/${id}/OPINION`)).status).toBe(200);
    type Log = { total: number; items: { actor: string; roles: string[]; method: string; route: string; status: number; at: string }[] };
    const read = async (): Promise<Log> => (await (await w.svc.request('GET', `/api/cases/${id}/access-log?limit=500`, { token: w.admin })).json()) as Log;
    // Audit rows are written once each answer is sent, each on its own pooled connection (they may
    // land in any order): wait for every row looked at below.
    const log = await eventually(
      read,
      (l) =>
        l.items.some((e) => e.actor === 'dr-snoop') &&
        l.items.some((e) => e.actor === 'dr-logged' && e.route === '/api/cases/:id') &&
        l.items.some((e) => e.actor === 'dr-logged' && e.route === '/api/cases/:id/completeness') &&
        l.items.some((e) => e.actor === 'dr-logged' && e.route === '/api/cases/:id/opinion'),
      10_000,
    );
    expect(log.items.find((e) => e.actor === 'dr-snoop')).toMatchObject({ roles: ['specialist'], method: 'GET', route: '/api/cases/:id/completeness', status: 403 });
    expect(log.items.find((e) => e.actor === 'dr-logged' && e.route === '/api/cases/:id/completeness')).toMatchObject({ status: 200 });
    expect(log.items.find((e) => e.actor === 'dr-logged' && e.route === '/api/cases/:id')).toMatchObject({ method: 'GET', status: 200 });
    expect(log.items.some((e) => e.actor === 'cm-access' && e.route === '/api/cases/:id/assignment' && e.method === 'POST')).toBe(true);
    expect(log.total).toBeGreaterThanOrEqual(log.items.length);
    // Past the end: no items, still the total (one statement: the total and the page see the same rows).
    const beyond = (await (await w.svc.request('GET', `/api/cases/${id}/access-log?offset=100000`, { token: w.admin })).json()) as Log;
    expect(beyond.items).toEqual([]);
    expect(beyond.total).toBeGreaterThanOrEqual(log.total);
    expect([...log.items].sort((a, b) => b.at.localeCompare(a.at)).map((e) => e.at)).toEqual(log.items.map((e) => e.at));
    // The privacy officer's view: admins only; a case that does not exist is a 404; a bad page names it.
    expect((await w.svc.request('GET', `/api/cases/${id}/access-log`, { token: await w.svc.token('case_manager', 'cm-3') })).status).toBe(403);
    expect((await w.svc.request('GET', '/api/cases/00000000-0000-4000-8000-000000000000/access-log', { token: w.admin })).status).toBe(404);
    const bad = await w.svc.request('GET', `/api/cases/${id}/access-log?limit=0`, { token: w.admin });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/limit/);
  });

  it('leaves a case assigned to a specialist with no bound subject open to specialists', async () => {
    const unbound = await w.cm.addSpecialist(w.admin, 'Unbound', [ENDO]);
    const id = await caseFor(w, unbound);
    expect((await statusAs(w, 'dr-anyone', `/api/cases/${id}`)).status).toBe(200);
  });
});

describe('EHR clients: only the cases their endpoint is linked to', () => {
  let w: World;
  let server: SandboxServer;
  beforeAll(async () => {
    w = await world();
    server = await startSandboxServer({ name: 'care-team-a', auth: 'none' });
    await server.load(fixtureBundle('care-team-a'));
  }, 60_000);
  afterAll(async () => {
    await server.stop();
    await w.svc.stop();
  });

  const register = (body: Record<string, unknown>): Promise<Response> =>
    w.svc.request('POST', '/api/endpoints', { token: w.admin, body: { name: 'team A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, ...body } });
  const fhirAs = async (sub: string, caseId: string): Promise<{ status: number; detail?: string }> => {
    const res = await w.svc.request('GET', `/api/cases/${caseId}/fhir`, { token: await w.svc.token('ehr', sub) });
    const body = (await res.json()) as { issue?: { diagnostics?: string }[] };
    const detail = body.issue?.[0]?.diagnostics;
    return { status: res.status, ...(res.status !== 200 && detail ? { detail } : {}) };
  };

  it('opens a case to the EHR bound to one of its sources, not to other bound EHRs; an unbound client is not limited', async () => {
    const res = await register({ inboundSubject: 'ehr-team-a' });
    expect(res.status).toBe(201);
    const endpoint = (await res.json()) as { id: string; inboundSubject: string };
    expect(endpoint.inboundSubject).toBe('ehr-team-a');
    const linked = await w.cm.openCase(sampleIntake());
    const added = await w.svc.request('POST', `/api/cases/${linked}/sources`, { token: await w.svc.token('case_manager', 'cm-ehr'), body: { endpointId: endpoint.id, patient: { id: fixturePatientId('care-team-a') } } });
    expect(added.status).toBe(201);
    const sourceId = ((await added.json()) as { id: string }).id;
    const other = await w.cm.openCase(sampleIntake());

    expect((await fhirAs('ehr-team-a', linked)).status).toBe(200);
    expect(await fhirAs('ehr-team-a', other)).toEqual({ status: 403, detail: 'This case is not shared with this EHR: its endpoint is neither a source nor a recipient of the case.' });
    expect((await fhirAs('ehr-unbound', other)).status).toBe(200);
    // A recipient links the case too (the referring physician's EHR reads the case it will receive).
    const recipient = await w.svc.request('POST', `/api/cases/${other}/recipients`, { token: await w.svc.token('case_manager', 'cm-ehr'), body: { endpointId: endpoint.id } });
    expect(recipient.status).toBe(201);
    expect((await fhirAs('ehr-team-a', other)).status).toBe(200);

    // One endpoint per inbound subject; a removed source no longer links.
    const twice = await register({ name: 'team A again', inboundSubject: 'ehr-team-a' });
    expect(twice.status).toBe(409);
    expect(JSON.stringify(await twice.json())).toMatch(/inboundSubject/);
    const removed = await w.svc.request('POST', `/api/cases/${linked}/sources/${sourceId}/remove`, { token: await w.svc.token('case_manager', 'cm-ehr'), body: {} });
    expect(removed.status).toBe(200);
    expect((await fhirAs('ehr-team-a', linked)).status).toBe(403);
    const unbound = await w.svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: w.admin, body: { inboundSubject: null } });
    expect(unbound.status).toBe(200);
    expect(((await unbound.json()) as { inboundSubject: string | null }).inboundSubject).toBeNull();
    // Unbinding does not make the client unlimited: it opens nothing, not even what it could before.
    const retired = "This EHR client's endpoint binding was removed (the endpoint was deleted or its inboundSubject changed): it opens no case.";
    expect(await fhirAs('ehr-team-a', other)).toEqual({ status: 403, detail: retired });
    expect(await fhirAs('ehr-team-a', linked)).toEqual({ status: 403, detail: retired });
    // Bound again, it is that endpoint's client again.
    const rebound = await w.svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: w.admin, body: { inboundSubject: 'ehr-team-a' } });
    expect(rebound.status).toBe(200);
    expect((await fhirAs('ehr-team-a', other)).status).toBe(200);
  });

  it('a deleted endpoint\'s client, or one whose endpoint was bound to a new subject, opens no case (it does not become unbound and unlimited)', async () => {
    const res = await register({ name: 'team B', inboundSubject: 'ehr-team-b' });
    expect(res.status).toBe(201);
    const endpoint = (await res.json()) as { id: string };
    const shared = await w.cm.openCase(sampleIntake());
    expect((await w.svc.request('POST', `/api/cases/${shared}/recipients`, { token: await w.svc.token('case_manager', 'cm-ehr'), body: { endpointId: endpoint.id } })).status).toBe(201);
    const other = await w.cm.openCase(sampleIntake());
    expect((await fhirAs('ehr-team-b', other)).status).toBe(403);

    // New credentials: the endpoint is bound to another subject; the old one opens nothing.
    const rotated = await w.svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: w.admin, body: { inboundSubject: 'ehr-team-b-2' } });
    expect(rotated.status).toBe(200);
    expect((await fhirAs('ehr-team-b', other)).status).toBe(403);
    expect((await fhirAs('ehr-team-b', shared)).status).toBe(403);
    expect((await fhirAs('ehr-team-b-2', shared)).status).toBe(200);
    expect((await fhirAs('ehr-team-b-2', other)).status).toBe(403);

    // The endpoint deleted: its client opens nothing.
    expect((await w.svc.request('DELETE', `/api/endpoints/${endpoint.id}`, { token: w.admin })).status).toBe(204);
    for (const caseId of [shared, other]) expect((await fhirAs('ehr-team-b-2', caseId)).status).toBe(403);
    // A client never bound to any endpoint is still not limited (EHR_CASE_ACCESS=linked-or-unbound).
    expect((await fhirAs('ehr-never-bound', other)).status).toBe(200);
  });
});

describe('SPECIALIST_CASE_ACCESS=assigned, EHR_CASE_ACCESS=linked: only their own cases', () => {
  let w: World;
  beforeAll(async () => {
    w = await world({ SPECIALIST_CASE_ACCESS: 'assigned', EHR_CASE_ACCESS: 'linked' });
  }, 60_000);
  afterAll(async () => {
    await w.svc.stop();
  });

  it('refuses unassigned cases and cases of others, and opens the bound specialist\'s own', async () => {
    const unassigned = await caseFor(w);
    expect(await statusAs(w, 'dr-strict', `/api/cases/${unassigned}`)).toEqual({ status: 403, detail: 'A specialist sees only the cases assigned to them.' });
    const mine = await w.cm.addSpecialist(w.admin, 'Strict', [ENDO], 'dr-strict');
    const id = await caseFor(w, mine);
    expect((await statusAs(w, 'dr-strict', `/api/cases/${id}`)).status).toBe(200);
    expect((await statusAs(w, 'dr-other', `/api/cases/${id}`)).status).toBe(403);
    const unbound = await caseFor(w, await w.cm.addSpecialist(w.admin, 'Unbound', [ENDO]));
    expect((await statusAs(w, 'dr-strict', `/api/cases/${unbound}`)).status).toBe(403);
  });

  it('refuses an EHR client bound to no endpoint', async () => {
    const id = await caseFor(w);
    const res = await w.svc.request('GET', `/api/cases/${id}/fhir`, { token: await w.svc.token('ehr', 'ehr-nobody') });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { issue: { diagnostics: string }[] }).issue[0]?.diagnostics).toBe('This EHR client is not bound to a registered endpoint (inboundSubject).');
  });
});

it('refuses unknown SPECIALIST_CASE_ACCESS and EHR_CASE_ACCESS values, naming them', () => {
  expect(() => loadConfig({ ...process.env, SPECIALIST_CASE_ACCESS: 'everyone' })).toThrow(/SPECIALIST_CASE_ACCESS/);
  expect(() => loadConfig({ ...process.env, EHR_CASE_ACCESS: 'everyone' })).toThrow(/EHR_CASE_ACCESS/);
});
