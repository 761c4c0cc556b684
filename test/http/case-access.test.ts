import { loadConfig } from '../../src/config';
import { sampleIntake } from '../support/intake';
import { ReviewClient } from '../support/review-case';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * A specialist opens only what the assignment lets them: once a case is assigned to a specialist the
 * directory binds to a token subject, other specialists are refused (the default); with
 * SPECIALIST_CASE_ACCESS=assigned they see nothing but their own assigned cases. Admins and case
 * managers are not limited. Real service, PostgreSQL and Redis.
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
    expect((await statusAs(w, 'dr-logged', `/api/cases/${id}/completeness`)).status).toBe(404); // no bundle yet, but allowed
    expect((await statusAs(w, 'dr-snoop', `/api/cases/${id}/completeness`)).status).toBe(403);
    type Log = { total: number; items: { actor: string; roles: string[]; method: string; route: string; status: number; at: string }[] };
    const read = async (): Promise<Log> => (await (await w.svc.request('GET', `/api/cases/${id}/access-log?limit=500`, { token: w.admin })).json()) as Log;
    // Audit rows are written once each answer is sent: wait for the two reads above.
    const log = await eventually(read, (l) => l.items.some((e) => e.actor === 'dr-snoop'), 10_000);
    expect(log.items.find((e) => e.actor === 'dr-snoop')).toMatchObject({ roles: ['specialist'], method: 'GET', route: '/api/cases/:id/completeness', status: 403 });
    expect(log.items.find((e) => e.actor === 'dr-logged')).toMatchObject({ route: '/api/cases/:id/completeness', status: 404 });
    expect(log.items.some((e) => e.actor === 'cm-access' && e.route === '/api/cases/:id/assignment' && e.method === 'POST')).toBe(true);
    expect(log.total).toBeGreaterThanOrEqual(log.items.length);
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

describe('SPECIALIST_CASE_ACCESS=assigned: only their own assigned cases', () => {
  let w: World;
  beforeAll(async () => {
    w = await world({ SPECIALIST_CASE_ACCESS: 'assigned' });
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
});

it('refuses an unknown SPECIALIST_CASE_ACCESS value, naming it', () => {
  expect(() => loadConfig({ ...process.env, SPECIALIST_CASE_ACCESS: 'everyone' })).toThrow(/SPECIALIST_CASE_ACCESS/);
});
