import { CircuitOpenError, SmartAuthError } from '../../src/fhir/errors';
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
async function ehr(): Promise<{ server: TestServer; tokenAnswer: { status: number }; tokenRequests: () => number; fhirRequests: () => number }> {
  const tokenAnswer = { status: 200 };
  const server = await startTestServer((req, res) => {
    if (req.url === '/auth/token') {
      if (tokenAnswer.status === 200) return sendJson(res, 200, { access_token: 'tok', token_type: 'bearer', expires_in: 300 });
      return sendJson(res, tokenAnswer.status, { error: tokenAnswer.status === 401 ? 'invalid_client' : 'temporarily_unavailable' });
    }
    if (req.headers.authorization !== 'Bearer tok') return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    return sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
  });
  opened.push(() => server.close());
  const count = (token: boolean) => (): number => server.requests.filter((r) => (r.url === '/auth/token') === token).length;
  return { server, tokenAnswer, tokenRequests: count(true), fhirRequests: count(false) };
}

function smartClient(server: TestServer, now: () => number) {
  const harness = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, {
    id: `token-outage-${++n}`,
    auth: { type: 'smart-backend', clientId: 'sob', privateKeyJwk: key.privateJwk, tokenUrl: `${server.url}/auth/token` },
  }, { now, retry: { maxAttempts: 2 }, breaker: { failureThreshold: 3, cooldownMs: 60_000 } });
  opened.push(() => harness.client.close());
  return harness;
}

it('counts a token endpoint answering 503 against the endpoint, as a 5xx of the FHIR server: the circuit opens and neither server is asked while it is', async () => {
  const { server, tokenAnswer, tokenRequests, fhirRequests } = await ehr();
  const c = clock();
  const { client, events } = smartClient(server, c.now);
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
  const { client } = smartClient(server, c.now);
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
  const { client } = smartClient(server, c.now);
  tokenAnswer.status = 401;
  for (let i = 0; i < 4; i += 1) {
    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthError);
    expect(err).toMatchObject({ status: 401, oauthError: 'invalid_client', permanent: true });
  }
  expect([tokenRequests(), fhirRequests()]).toEqual([4, 0]); // no retry of a refusal
  expect(await client.circuitState()).toEqual({ state: 'closed', failures: 0 });
});
