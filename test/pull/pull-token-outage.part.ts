import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { makeSmartClient, type TestSmartClient } from '../support/smart-client';

/**
 * An outage of an EHR's SMART token endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html)
 * pauses the endpoint as an outage of its FHIR server does: the pull's queries wait for it and complete
 * once it is back, instead of spending their attempts and failing the pull. A token endpoint that
 * refuses our registration (invalid_client) fails the queries at once: that needs an operator.
 *
 * A token endpoint that asks, with a `Retry-After` beyond what one request may wait (RFC 9110 §10.2.3),
 * to come back later is not asked again before then: the endpoint is held, the pull waits and completes.
 *
 * The pull starts after the care team's token ran out (the server answers 401 `invalid_token` to the
 * record queries), so every query needs a new token while the token endpoint is down.
 */
let svc: TestService;
let cm: string;
let admin: string;
let smart: TestSmartClient;

beforeAll(async () => {
  smart = await makeSmartClient('sob-token-outage', 'ES384');
  // Jobs retry fast (4 attempts, 50 ms apart) and wait at most 30 s in all for a paused endpoint.
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '1500', PULL_MAX_PAUSE_WAIT_MS: '30000' }, FAST_CLIENT);
  [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
});
afterAll(async () => {
  await svc.stop();
});

interface Ended {
  readonly circuit: string;
  readonly pull: { state: string; sources: { resourceTypes: { state: string; lastError: string | null; retries: number }[] }[] };
}

/** Care team A on a SMART sandbox, registered, with a case whose source is resolved (a token was fetched for that). */
async function caseOnCareTeamA(server: SandboxServer): Promise<{ caseId: string; endpointId: string }> {
  server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  await server.load(fixtureBundle('care-team-a'));
  const res = await svc.request('POST', '/api/endpoints', {
    token: admin,
    body: { name: 'Care team A', baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  const endpointId = ((await res.json()) as { id: string }).id;
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  return { caseId, endpointId };
}

async function startPull(caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(202);
  return ((await res.json()) as { pullId: string }).pullId;
}

/** The endpoint's circuit state and the pull's progress. */
async function stateOf(endpointId: string, caseId: string, pullId: string): Promise<Ended> {
  const circuit = (await (await svc.request('GET', `/api/endpoints/${endpointId}/circuit`, { token: cm })).json()) as { state: string };
  const pull = (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as Ended['pull'];
  return { circuit: circuit.state, pull };
}

const ended = (s: Ended): boolean => ['complete', 'partial', 'failed'].includes(s.pull.state);

it.each([
  ['answers 503', { kind: 'unavailable' }],
  ['resets the connection', { kind: 'reset' }],
] as const)('waits while the token endpoint %s, as for a FHIR server outage, and completes the pull once it is back', async (_what, action) => {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset' });
  try {
    const { caseId, endpointId } = await caseOnCareTeamA(server);
    const down = server.faults.add({ match: 'POST /auth/token', action });
    const expired = server.faults.add({ match: 'GET /Patient*', action: { kind: 'expired-token' } });
    const pullId = await startPull(caseId);
    // The outage lasts until the endpoint is paused (or, were it not, until the pull gives up).
    const paused = await eventually(() => stateOf(endpointId, caseId, pullId), (s) => s.circuit !== 'closed' || ended(s), 60_000);
    server.faults.remove(down);
    server.faults.remove(expired);
    expect(paused.pull.state).toBe('running');
    const done = await eventually(() => stateOf(endpointId, caseId, pullId), ended, 60_000);
    expect(done.pull.state).toBe('complete');
    expect(done.circuit).toBe('closed');
    const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId]);
    expect(rows[0]?.n).toBeGreaterThan(0);
  } finally {
    await server.stop();
  }
}, 120_000);

it('fails the queries at once, without retrying them, when the token endpoint refuses our registration (invalid_client)', async () => {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset' });
  try {
    const { caseId, endpointId } = await caseOnCareTeamA(server);
    // The EHR no longer knows our key: its token endpoint answers 401 invalid_client.
    server.registerClient({ clientId: smart.clientId, jwks: (await makeSmartClient('someone-else')).publicJwks });
    server.faults.add({ match: 'GET /Patient*', action: { kind: 'expired-token' } });
    const pullId = await startPull(caseId);
    const done = await eventually(() => stateOf(endpointId, caseId, pullId), ended, 60_000);
    expect(done.pull.state).toBe('failed');
    const queries = done.pull.sources.flatMap((s) => s.resourceTypes);
    expect(queries.length).toBeGreaterThan(0);
    for (const q of queries) {
      expect(q.state).toBe('failed');
      expect(q.lastError).toMatch(/HTTP 401, invalid_client/);
      expect(q.retries).toBe(0);
    }
    expect(done.circuit).toBe('closed');
  } finally {
    await server.stop();
  }
}, 120_000);

it('asks a token endpoint that answered 503 with a Retry-After beyond the in-request limit nothing before then: the endpoint is held and the pull completes', async () => {
  const RETRY_AFTER_SECONDS = 3; // FAST_CLIENT waits at most 1.5 s in-request
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset' });
  try {
    const { caseId, endpointId } = await caseOnCareTeamA(server);
    const busy = server.faults.add({ match: 'POST /auth/token', nth: 1, action: { kind: 'unavailable', retryAfterSeconds: RETRY_AFTER_SECONDS } });
    server.faults.add({ match: 'GET /Patient*', nth: 1, action: { kind: 'expired-token' } });
    const pullId = await startPull(caseId);
    // Held, not failed: the circuit is open while the pull runs.
    const held = await eventually(() => stateOf(endpointId, caseId, pullId), (s) => s.circuit !== 'closed' || ended(s), 60_000);
    expect(held).toMatchObject({ circuit: 'open', pull: { state: 'running' } });
    const done = await eventually(() => stateOf(endpointId, caseId, pullId), ended, 60_000);
    expect(done.pull.state).toBe('complete');
    expect(done.circuit).toBe('closed');
    expect(server.faults.rule(busy)?.fired).toBe(1);

    const tokenRequests = server.requests().filter((r) => r.target === '/auth/token');
    const refused = tokenRequests.findIndex((r) => r.status === 503);
    const refusedAt = tokenRequests[refused]?.at ?? 0;
    const after = tokenRequests.slice(refused + 1);
    expect(after.length).toBeGreaterThan(0);
    for (const r of after) expect(r.at - refusedAt).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000);
  } finally {
    await server.stop();
  }
}, 120_000);
