import { CircuitOpenError, ServerRetryAfterError, SmartAuthError } from '../../src/fhir/errors';
import { HttpTransport } from '../../src/fhir/http-transport';
import { SmartBackendAuth } from '../../src/fhir/smart-backend-auth';
import { generateClientKey, publicJwkOf, startSandboxServer, type RetryAfterFormat } from '../../src/sandbox';
import { makeClient } from './support/client';
import { sendJson, startTestServer, type TestServer } from './support/http-server';
import { makeKey, type TestKey } from './support/keys';
import { testRedis, type TestRedis } from './support/redis';

/**
 * The SMART token endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token)
 * is part of the endpoint it authorizes: when it fails (5xx), the endpoint's circuit breaker counts
 * it as it counts a 5xx of the FHIR server, so pull jobs wait for the paused endpoint instead of
 * spending their attempts; a probe that cannot get a token re-opens the circuit. A refusal of our
 * registration (invalid_client) is permanent and says nothing of the endpoint's health.
 *
 * A `Retry-After` of the token endpoint (RFC 9110 §10.2.3, seconds or HTTP-date) is honoured as one of
 * the FHIR server is: waited for within the in-request limit; beyond it the endpoint's circuit is held
 * open until then, and neither server is asked before.
 */
let env: TestRedis;
let key: TestKey;
let n = 0;
beforeAll(async () => {
  env = testRedis('token-outage');
  key = await makeKey('ES384');
});
afterAll(() => env.cleanup());
/** Servers and clients of the test, closed after it whatever its outcome. */
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((close) => close()));
});

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** An EHR whose token endpoint answers `tokenAnswer` (200 issues `tok`); its FHIR server wants `tok`. */
async function ehr(): Promise<{ server: TestServer; tokenAnswer: { status: number; retryAfter?: string; date?: string }; tokenRequests: () => number; fhirRequests: () => number }> {
  const tokenAnswer: { status: number; retryAfter?: string; date?: string } = { status: 200 };
  const server = await startTestServer((req, res) => {
    if (req.url === '/auth/token') {
      if (tokenAnswer.status === 200) return sendJson(res, 200, { access_token: 'tok', token_type: 'bearer', expires_in: 300 });
      const headers = {
        ...(tokenAnswer.retryAfter !== undefined ? { 'retry-after': tokenAnswer.retryAfter } : {}),
        ...(tokenAnswer.date !== undefined ? { date: tokenAnswer.date } : {}),
      };
      return sendJson(res, tokenAnswer.status, { error: tokenAnswer.status === 401 ? 'invalid_client' : 'temporarily_unavailable' }, headers);
    }
    if (req.headers.authorization !== 'Bearer tok') return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    return sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
  });
  opened.push(() => server.close());
  const count = (token: boolean) => (): number => server.requests.filter((r) => (r.url === '/auth/token') === token).length;
  return { server, tokenAnswer, tokenRequests: count(true), fhirRequests: count(false) };
}

function smartClient(server: TestServer, c: { now: () => number; advance: (ms: number) => number }, id = `token-outage-${++n}`) {
  const harness = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, {
    id,
    auth: { type: 'smart-backend', clientId: 'sob', privateKeyJwk: key.privateJwk, tokenUrl: `${server.url}/auth/token` },
  }, {
    now: c.now,
    // The client's waits pass on the test's clock, at once.
    sleep: async (ms) => void c.advance(ms),
    retry: { maxAttempts: 2, maxRetryAfterMs: 120_000 },
    breaker: { failureThreshold: 3, cooldownMs: 60_000 },
  });
  opened.push(() => harness.client.close());
  return harness;
}

it('counts a token endpoint answering 503 against the endpoint, as a 5xx of the FHIR server: the circuit opens and neither server is asked while it is', async () => {
  const { server, tokenAnswer, tokenRequests, fhirRequests } = await ehr();
  const c = clock();
  const { client, events } = smartClient(server, c);
  tokenAnswer.status = 503;
  for (let i = 0; i < 3; i += 1) {
    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthError);
    expect(err).toMatchObject({ status: 503, retryable: true });
  }
  expect(tokenRequests()).toBe(6); // 3 calls × 2 attempts
  expect(await client.circuitState()).toEqual({ state: 'open', failures: 3, retryAt: c.now() + 60_000 });
  expect(events).toContainEqual({ type: 'circuit-open', endpointId: client.endpoint.id, cause: 'opened', retryAt: c.now() + 60_000 });

  const err = await client.read('Patient', 'p').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CircuitOpenError);
  expect(err).toMatchObject({ retryAt: c.now() + 60_000, retryable: true });
  expect([tokenRequests(), fhirRequests()]).toEqual([6, 0]);
});

it('lets the probe of a paused endpoint try once for a token: its failure re-opens the circuit, its success closes it', async () => {
  const { server, tokenAnswer, tokenRequests } = await ehr();
  const c = clock();
  const { client } = smartClient(server, c);
  tokenAnswer.status = 502;
  for (let i = 0; i < 3; i += 1) await expect(client.read('Patient', 'p')).rejects.toBeInstanceOf(SmartAuthError);
  expect(await client.circuitState()).toMatchObject({ state: 'open' });

  // The cool-down is over; the token endpoint is still down: one token request, and the circuit is open
  // again for a whole cool-down (not left half-open, every caller waiting on a probe that gave up).
  c.advance(60_000);
  const asked = tokenRequests();
  await expect(client.read('Patient', 'p')).rejects.toMatchObject({ name: 'SmartAuthError', status: 502 });
  expect(tokenRequests() - asked).toBe(1);
  expect(await client.circuitState()).toEqual({ state: 'open', failures: 3, retryAt: c.now() + 60_000 });

  // Back: the next probe gets its token and closes the circuit.
  c.advance(60_000);
  tokenAnswer.status = 200;
  await expect(client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
  expect(await client.circuitState()).toEqual({ state: 'closed', failures: 0 });
});

it('fails at once, for good, when the token endpoint refuses our registration (401 invalid_client), without counting it against the endpoint', async () => {
  const { server, tokenAnswer, tokenRequests, fhirRequests } = await ehr();
  const c = clock();
  const { client } = smartClient(server, c);
  tokenAnswer.status = 401;
  for (let i = 0; i < 4; i += 1) {
    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthError);
    expect(err).toMatchObject({ status: 401, oauthError: 'invalid_client', permanent: true });
  }
  expect([tokenRequests(), fhirRequests()]).toEqual([4, 0]); // no retry of a refusal
  expect(await client.circuitState()).toEqual({ state: 'closed', failures: 0 });
});

describe('Retry-After of the token endpoint (RFC 9110 §10.2.3)', () => {
  it.each([
    ['503, delay-seconds', 'unavailable', 'seconds'],
    ['429, HTTP-date', 'rate-limit', 'http-date'],
  ] as const)('asks the token endpoint again only once the time it named has come (%s), on the real clock', async (_what, kind, format: RetryAfterFormat) => {
    const privateJwk = await generateClientKey('ES384');
    const sandbox = await startSandboxServer({ name: 'token-retry-after', auth: 'smart', paging: 'offset' });
    opened.push(() => sandbox.stop());
    sandbox.registerClient({ clientId: 'sob', jwks: { keys: [publicJwkOf(privateJwk)] } });
    await sandbox.load([{ resourceType: 'Patient', id: 'p1' }]);
    sandbox.faults.add({ match: 'POST /auth/token', nth: 1, action: { kind, retryAfterSeconds: 2, retryAfterFormat: format } });
    const { client } = makeClient(env.connect(), env.prefix, sandbox.baseUrl, { id: `token-outage-${++n}`, auth: { type: 'smart-backend', clientId: 'sob', privateKeyJwk: privateJwk } }, {
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    });
    opened.push(() => client.close());

    await expect(client.read('Patient', 'p1')).resolves.toMatchObject({ id: 'p1' });
    const tokenRequests = sandbox.requests().filter((r) => r.target === '/auth/token');
    expect(tokenRequests.map((r) => r.status)).toEqual([kind === 'unavailable' ? 503 : 429, 200]);
    const [refused, next] = tokenRequests;
    // Not sooner than asked (a timer may fire a millisecond or two early).
    expect((next?.at ?? 0) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(2000 - 10);
  }, 20_000);

  it('waits a Retry-After within the in-request limit (seconds or HTTP-date), and holds the endpoint until the one its last attempt met', async () => {
    const { server, tokenAnswer, tokenRequests, fhirRequests } = await ehr();
    const c = clock();
    const { client, sleeps, events } = smartClient(server, c);
    tokenAnswer.status = 503;
    tokenAnswer.retryAfter = '7';
    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(sleeps).toEqual([7000]);
    expect(events).toContainEqual({ type: 'throttled', endpointId: client.endpoint.id, source: 'server', waitMs: 7000 });
    // The attempts are spent, but the last answer named a time: nothing is asked before it (a job's own backoff would).
    expect(err).toBeInstanceOf(ServerRetryAfterError);
    expect(err).toMatchObject({ status: 503, source: 'token-endpoint', retryable: true, retryAfterMs: 7000, retryAt: c.now() + 7000, attempts: 2 });
    expect(await client.circuitState()).toEqual({ state: 'open', failures: 1, retryAt: c.now() + 7000 });
    c.advance(6999);
    await expect(client.read('Patient', 'p')).rejects.toMatchObject({ name: 'CircuitOpenError', retryAt: c.now() + 1 });
    expect([tokenRequests(), fhirRequests()]).toEqual([2, 0]);

    // An HTTP-date is read against the Date the token endpoint sent (its clock: here the injected one).
    // After the hold, the probe has one attempt: its answer's Retry-After holds the endpoint again.
    c.advance(1);
    tokenAnswer.date = new Date(c.now()).toUTCString();
    tokenAnswer.retryAfter = new Date(c.now() + 9000).toUTCString();
    await expect(client.read('Patient', 'p')).rejects.toMatchObject({ name: 'ServerRetryAfterError', retryAfterMs: 9000 });
    expect(sleeps).toEqual([7000]);
    expect(tokenRequests()).toBe(3);
  });

  it('holds the endpoint until a Retry-After beyond the in-request limit, in every process, without counting a failure, then probes', async () => {
    const { server, tokenAnswer, tokenRequests, fhirRequests } = await ehr();
    const c = clock();
    const id = `token-held-${++n}`;
    const first = smartClient(server, c, id);
    tokenAnswer.status = 429;
    tokenAnswer.retryAfter = '3600';
    const err = await first.client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerRetryAfterError);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 3_600_000, retryAt: c.now() + 3_600_000, retryable: true, attempts: 1 });
    expect((err as Error).message).toMatch(/token endpoint answered 429/);
    expect(first.sleeps).toEqual([]); // not retried in-request
    expect(await first.client.circuitState()).toEqual({ state: 'open', failures: 0, retryAt: c.now() + 3_600_000 });

    // Neither this process nor another asks either server before then.
    const second = smartClient(server, c, id);
    c.advance(3_600_000 - 1);
    for (const { client } of [first, second]) {
      await expect(client.read('Patient', 'p')).rejects.toMatchObject({ name: 'CircuitOpenError', retryAt: c.now() + 1 });
    }
    expect([tokenRequests(), fhirRequests()]).toEqual([1, 0]);

    // Then one probe gets its token and closes the circuit.
    c.advance(1);
    tokenAnswer.status = 200;
    await expect(second.client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect([tokenRequests(), fhirRequests()]).toEqual([2, 1]);
    expect(await first.client.circuitState()).toEqual({ state: 'closed', failures: 0 });
  });

  it('keeps the token endpoint\'s Retry-After for every process: one that was waiting on the fetch lock when it came does not ask before then', async () => {
    // Below the circuit breaker: a process that passed its circuit check before the endpoint was held
    // (a pull task starting while another's token request is under way) asks the token layer itself.
    const { server, tokenAnswer, tokenRequests } = await ehr();
    const c = clock();
    const endpointId = `token-hold-${++n}`;
    // Two processes: their own Redis connections and transports, the same endpoint.
    const processAuth = (): SmartBackendAuth =>
      new SmartBackendAuth({
        endpointId,
        baseUrl: `${server.url}/fhir`,
        config: { type: 'smart-backend', clientId: 'sob', privateKeyJwk: key.privateJwk, tokenUrl: `${server.url}/auth/token` },
        redis: env.connect(),
        keyPrefix: env.prefix,
        transport: new HttpTransport({ allowInsecureHttp: true }),
        guard: { allowInsecureHttp: true },
        timeoutMs: 5_000,
        now: c.now,
      });
    const [first, second] = [processAuth(), processAuth()];
    tokenAnswer.status = 503;
    tokenAnswer.retryAfter = '3600';
    await expect(first.accessToken()).rejects.toMatchObject({ name: 'SmartAuthError', status: 503, retryAfterMs: 3_600_000 });
    expect(tokenRequests()).toBe(1);

    // The second process, ten minutes later, gets the rest of the delay without asking.
    c.advance(600_000);
    const held = await second.accessToken().catch((e: unknown) => e);
    expect(held).toBeInstanceOf(SmartAuthError);
    expect(held).toMatchObject({ status: 503, retryable: true, retryAfterMs: 3_000_000 });
    expect((held as Error).message).toMatch(/token endpoint asked to be called again later \(HTTP 503, Retry-After until /);
    expect(tokenRequests()).toBe(1);

    // Once the time has come, it asks.
    c.advance(3_000_000);
    tokenAnswer.status = 200;
    await expect(second.accessToken()).resolves.toBe('tok');
    expect(tokenRequests()).toBe(2);
  });

  it('keeps a refusal of our registration permanent, whatever Retry-After comes with it', async () => {
    const { server, tokenAnswer, tokenRequests } = await ehr();
    const c = clock();
    const { client, sleeps } = smartClient(server, c);
    tokenAnswer.status = 401;
    tokenAnswer.retryAfter = '3600';
    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthError);
    expect(err).not.toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ status: 401, oauthError: 'invalid_client', permanent: true });
    expect((err as SmartAuthError).retryAfterMs).toBeUndefined();
    expect(sleeps).toEqual([]);
    expect(tokenRequests()).toBe(1);
    expect(await client.circuitState()).toEqual({ state: 'closed', failures: 0 });
  });
});

it('sends a non-idempotent transaction after a token the endpoint could not give at first: the transaction itself was never sent, so it goes out once', async () => {
  let tokenAnswers = 0;
  const server = await startTestServer((req, res) => {
    if (req.url === '/auth/token') {
      tokenAnswers += 1;
      // Down for the first token request only.
      if (tokenAnswers === 1) return sendJson(res, 503, { error: 'temporarily_unavailable' });
      return sendJson(res, 200, { access_token: 'tok', token_type: 'bearer', expires_in: 300 });
    }
    if (req.headers.authorization !== 'Bearer tok') return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    return sendJson(res, 200, { resourceType: 'Bundle', type: 'transaction-response', entry: [] });
  });
  opened.push(() => server.close());
  const { client } = smartClient(server, clock());
  const answer = await client.transaction({ resourceType: 'Bundle', type: 'transaction', entry: [] }, { idempotent: false });
  expect(answer).toMatchObject({ resourceType: 'Bundle', type: 'transaction-response' });
  expect(tokenAnswers).toBe(2);
  expect(server.requests.filter((r) => r.method === 'POST' && r.url !== '/auth/token')).toHaveLength(1);
});
