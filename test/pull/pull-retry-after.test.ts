import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * A server that answers 429 with a `Retry-After` longer than a request may wait (RFC 9110 §10.2.3)
 * is not asked again before that time: the pull's job waits, as for a paused endpoint, and then
 * goes on from where it was. The in-request limit is lowered to 500 ms so that 3 s is "beyond" it.
 */
const RETRY_AFTER_SECONDS = 3;
let svc: TestService;
let server: SandboxServer;

beforeAll(async () => {
  [svc, server] = await Promise.all([
    startTestService({ PULL_JOB_BACKOFF_MS: '50' }, { clientOptions: { retry: { baseDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 500 }, breaker: { cooldownMs: 500 } } }),
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: 10, maxCount: 10 }),
  ]);
  await server.load(fixtureBundle('care-team-a'));
}, 60_000);
afterAll(async () => {
  await Promise.all([svc.stop(), server.stop()]);
});

it('sends nothing to a server before the time its Retry-After names, beyond the in-request limit, then completes the pull', async () => {
  const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
  const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  const endpointId = ((await res.json()) as { id: string }).id;
  const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  // The second page of the record asks us to come back in 3 s.
  const rule = server.faults.add({ match: 'GET /Patient/*/$everything', nth: 2, action: { kind: 'rate-limit', retryAfterSeconds: RETRY_AFTER_SECONDS } });
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Observation'] } });
  const { pullId } = (await started.json()) as { pullId: string };
  const state = await eventually(
    async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state,
    (s) => s === 'complete' || s === 'partial' || s === 'failed',
    60_000,
  );
  expect(state).toBe('complete');
  expect(server.faults.rule(rule)?.fired).toBe(1);

  const requests = server.requests().filter((r) => r.target.includes('$everything'));
  const refused = requests.findIndex((r) => r.status === 429);
  const refusedAt = requests[refused]?.at ?? 0;
  expect(refused).toBe(1);
  // Asked again (the same page) only once the time it named had come, and only once.
  const after = requests.slice(refused + 1);
  expect(after.length).toBeGreaterThan(0);
  expect(after[0]?.target).toBe(requests[refused]?.target);
  for (const r of after) expect(r.at - refusedAt).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000);
  expect(requests.filter((r) => r.status === 429)).toHaveLength(1);
  // And the breaker, which held the endpoint, is closed again.
  const circuit = await svc.request('GET', `/api/endpoints/${endpointId}/circuit`, { token: cm });
  expect(await circuit.json()).toMatchObject({ state: 'closed', failures: 0 });
}, 90_000);
