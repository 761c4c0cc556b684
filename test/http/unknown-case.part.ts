import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

/**
 * A case that does not exist is a 404 naming it on every case route, lists included: an empty list
 * would read as "none yet", and "no bundle yet" as "wait for the pull".
 */
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const NO_CASE = '00000000-0000-4000-8000-000000000000';
const ROUTES = ['sources', 'pulls', 'transfer-requests', 'bundle', 'bundle/summary', 'completeness', 'bundle/versions'];

it('answers 404 naming the case for a case that does not exist, and the empty answers for one that does', async () => {
  const cm = await svc.token('case_manager');
  for (const route of ROUTES) {
    const res = await svc.request('GET', `/api/cases/${NO_CASE}/${route}`, { token: cm });
    const body = (await res.json()) as { detail?: string; issue?: { diagnostics?: string }[] };
    expect({ route, status: res.status, detail: body.detail ?? body.issue?.[0]?.diagnostics }).toEqual({ route, status: 404, detail: `Case ${NO_CASE} was not found.` });
  }
  const created = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
  const { id } = (await created.json()) as { id: string };
  for (const route of ['sources', 'pulls', 'transfer-requests']) {
    const res = await svc.request('GET', `/api/cases/${id}/${route}`, { token: cm });
    expect({ route, status: res.status, body: await res.json() }).toEqual({ route, status: 200, body: { items: [] } });
  }
  const bundle = await svc.request('GET', `/api/cases/${id}/bundle`, { token: cm });
  expect(bundle.status).toBe(404);
  expect(JSON.stringify(await bundle.json())).toContain('no pull has completed yet');
});
