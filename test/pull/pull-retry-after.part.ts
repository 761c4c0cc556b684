import type { FaultAction } from '../../src/sandbox/faults/fault-types';
import { startSandboxServer, type RecordedRequest, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * A server that answers 429 with a `Retry-After` (RFC 9110 §10.2.3) is not asked again before that
 * time, whether the time is longer than a request may wait, or within it but met on the request's
 * last attempt: the endpoint is held until then, the pull's job waits as for a paused endpoint
 * instead of being retried by its own backoff (50 ms here), and then goes on from where it was.
 */
interface RetryOptions {
  readonly maxAttempts?: number;
  readonly maxRetryAfterMs: number;
}

interface RefusedPull {
  readonly state: string | undefined;
  readonly fired: number | undefined;
  /** The `$everything` requests the server saw, in order. */
  readonly requests: readonly RecordedRequest[];
  /** The endpoint's circuit breaker once the pull ended. */
  readonly circuit: unknown;
}

/**
 * A service whose client retries as `retry` says and care team A's sandbox; an Observation pull of
 * the fixture child whose `$everything` requests meet `fault` (from the `from`-th to the `to`-th).
 */
function pullUnderRefusals(retry: RetryOptions): (fault: { from: number; to: number; action: FaultAction }) => Promise<RefusedPull> {
  let svc: TestService;
  let server: SandboxServer;
  beforeAll(async () => {
    [svc, server] = await Promise.all([
      startTestService({ PULL_JOB_BACKOFF_MS: '50' }, { clientOptions: { retry: { baseDelayMs: 5, maxDelayMs: 50, ...retry }, breaker: { cooldownMs: 500 } } }),
      startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: 10, maxCount: 10 }),
    ]);
    await server.load(fixtureBundle('care-team-a'));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([svc.stop(), server.stop()]);
  });
  return async (fault) => {
    const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
    const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
    const endpointId = ((await res.json()) as { id: string }).id;
    const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
    expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
    const rule = server.faults.add({ match: 'GET /Patient/*/$everything', ...fault });
    const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Observation'] } });
    const { pullId } = (await started.json()) as { pullId: string };
    const state = await eventually(
      async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state,
      (s) => s === 'complete' || s === 'partial' || s === 'failed',
      60_000,
    );
    const circuit = await (await svc.request('GET', `/api/endpoints/${endpointId}/circuit`, { token: cm })).json();
    return { state, fired: server.faults.rule(rule)?.fired, requests: server.requests().filter((r) => r.target.includes('$everything')), circuit };
  };
}

/** Every request after each refusal came only once the time that refusal named had come. */
function expectNothingBeforeRetryAfter(requests: RefusedPull['requests'], seconds: number): void {
  requests.forEach((refusal, i) => {
    if (refusal.status !== 429) return;
    for (const r of requests.slice(i + 1)) expect(r.at - refusal.at).toBeGreaterThanOrEqual(seconds * 1000);
  });
}

describe('a Retry-After beyond what a request may wait (500 ms here)', () => {
  const RETRY_AFTER_SECONDS = 3;
  const pull = pullUnderRefusals({ maxRetryAfterMs: 500 });

  it('sends nothing to a server before the time its Retry-After names, then completes the pull', async () => {
    // The second page of the record asks us to come back in 3 s.
    const { state, fired, requests, circuit } = await pull({ from: 2, to: 2, action: { kind: 'rate-limit', retryAfterSeconds: RETRY_AFTER_SECONDS } });
    expect(state).toBe('complete');
    expect(fired).toBe(1);
    const refused = requests.findIndex((r) => r.status === 429);
    expect(refused).toBe(1);
    // Asked again (the same page) only once the time it named had come, and only once.
    const after = requests.slice(refused + 1);
    expect(after.length).toBeGreaterThan(0);
    expect(after[0]?.target).toBe(requests[refused]?.target);
    expectNothingBeforeRetryAfter(requests, RETRY_AFTER_SECONDS);
    expect(requests.filter((r) => r.status === 429)).toHaveLength(1);
    // And the breaker, which held the endpoint, is closed again.
    expect(circuit).toMatchObject({ state: 'closed', failures: 0 });
  }, 90_000);
});

describe("a Retry-After within what a request may wait, met on the request's last attempt", () => {
  const RETRY_AFTER_SECONDS = 1;
  const pull = pullUnderRefusals({ maxAttempts: 2, maxRetryAfterMs: 2000 });

  it('sends nothing to a server before the time the Retry-After of its last refusal names, then completes the pull', async () => {
    // From the second page on, four requests in a row are refused, each asking us to come back in 1 s:
    // two requests' worth of attempts (2 each), each ending on a refusal.
    const { state, fired, requests, circuit } = await pull({ from: 2, to: 5, action: { kind: 'rate-limit', retryAfterSeconds: RETRY_AFTER_SECONDS } });
    expect(state).toBe('complete');
    expect(fired).toBe(4);
    expect(requests.flatMap((r, i) => (r.status === 429 ? [i] : []))).toEqual([1, 2, 3, 4]);
    expectNothingBeforeRetryAfter(requests, RETRY_AFTER_SECONDS);
    expect(requests[5]?.target).toBe(requests[1]?.target);
    expect(circuit).toMatchObject({ state: 'closed', failures: 0 });
  }, 90_000);
});
