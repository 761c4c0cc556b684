import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * A server that keeps answering 429 with a `Retry-After` a request may wait for (RFC 9110 §10.2.3)
 * until the request's attempts run out is not asked again before that time either: the last
 * answer's Retry-After holds the endpoint, and the pull's job waits as for a paused endpoint instead
 * of being retried by its own backoff (50 ms here, well before the second the server named).
 */
const RETRY_AFTER_SECONDS = 1;
let svc: TestService;
let server: SandboxServer;

beforeAll(async () => {
  [svc, server] = await Promise.all([
    startTestService({ PULL_JOB_BACKOFF_MS: '50' }, { clientOptions: { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 2000 }, breaker: { cooldownMs: 500 } } }),
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: 10, maxCount: 10 }),
  ]);
  await server.load(fixtureBundle('care-team-a'));
}, 60_000);
afterAll(async () => {
  await Promise.all([svc.stop(), server.stop()]);
});

it('sends nothing to a server before the time the Retry-After of its last refusal names, once the in-request attempts are spent, then completes the pull', async () => {
  const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
  const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  const endpointId = ((await res.json()) as { id: string }).id;
  const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  // From the second page on, four requests in a row are refused, each asking us to come back in 1 s:
  // two requests' worth of attempts (2 each), each ending on a refusal.
  const rule = server.faults.add({ match: 'GET /Patient/*/$everything', from: 2, to: 5, action: { kind: 'rate-limit', retryAfterSeconds: RETRY_AFTER_SECONDS } });
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Observation'] } });
  const { pullId } = (await started.json()) as { pullId: string };
  const state = await eventually(
    async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state,
    (s) => s === 'complete' || s === 'partial' || s === 'failed',
    60_000,
  );
  expect(state).toBe('complete');
  expect(server.faults.rule(rule)?.fired).toBe(4);

  const requests = server.requests().filter((r) => r.target.includes('$everything'));
  const refusals = requests.flatMap((r, i) => (r.status === 429 ? [i] : []));
  expect(refusals).toEqual([1, 2, 3, 4]);
  // Each request after a refusal came only once the time that refusal named had come.
  for (const i of refusals) {
    const refusedAt = requests[i]?.at ?? 0;
    for (const r of requests.slice(i + 1)) expect(r.at - refusedAt).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000);
  }
  expect(requests[5]?.target).toBe(requests[1]?.target);
  // And the breaker, which held the endpoint, is closed again.
  const circuit = await svc.request('GET', `/api/endpoints/${endpointId}/circuit`, { token: cm });
  expect(await circuit.json()).toMatchObject({ state: 'closed', failures: 0 });
}, 90_000);
