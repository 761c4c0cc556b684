/**
 * Outbound client review: defects an EHR integration engineer hits, each driven against a real HTTP
 * server on loopback (SMART discovery, the circuit breaker across a retry, Retry-After dates from a
 * server whose clock differs from ours, OperationOutcome answered with 200).
 */
import type { Redis } from 'ioredis';
import { RedisCircuitBreaker } from '../../src/fhir/circuit-breaker';
import { FhirHttpError, PermanentFhirError } from '../../src/fhir/errors';
import { makeClient } from './support/client';
import { outcome, sendJson, startTestServer, type TestServer } from './support/http-server';
import { makeKey, type TestKey } from './support/keys';
import { testRedis, type TestRedis } from './support/redis';

let env: TestRedis;
let redis: Redis;
let key: TestKey;
let n = 0;
const opened: (() => Promise<void>)[] = [];

beforeAll(async () => {
  env = testRedis('cl-review');
  redis = env.connect();
  key = await makeKey('ES384');
});
afterAll(() => env.cleanup());
afterEach(async () => {
  await Promise.all(opened.splice(0).map((close) => close()));
});

async function server(handler: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(handler);
  opened.push(() => s.close());
  return s;
}

function payloadOf(jwt: string): Record<string, unknown> {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('SMART discovery', () => {
  it('resolves a relative token_endpoint against the smart-configuration document, and signs aud with that absolute URL', async () => {
    const assertions: string[] = [];
    const s = await server((req, res, body) => {
      if (req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: '/oauth2/token', capabilities: ['client-confidential-asymmetric'] });
      if (req.url === '/oauth2/token') {
        assertions.push(new URLSearchParams(body.toString('utf8')).get('client_assertion') ?? '');
        return sendJson(res, 200, { access_token: 'tok', token_type: 'Bearer', expires_in: 300 });
      }
      if (req.headers.authorization !== 'Bearer tok') return sendJson(res, 401, outcome('login'));
      return sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
    });
    const { client } = makeClient(redis, env.prefix, `${s.url}/fhir`, {
      id: `cl-disc-${++n}`,
      auth: { type: 'smart-backend', clientId: 'sob', privateKeyJwk: key.privateJwk },
    });
    opened.push(() => client.close());
    await expect(client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect(assertions).toHaveLength(1);
    expect(payloadOf(assertions[0] ?? '').aud).toBe(`${s.url}/oauth2/token`);
  });
});

describe('circuit breaker across an in-request retry', () => {
  it('records the success of a retry that the breaker admitted as its half-open probe: the circuit closes instead of refusing every caller until the probe lease ends', async () => {
    let t = 1_700_000_000_000;
    const now = (): number => t;
    let fhirCalls = 0;
    const s = await server((_req, res) => {
      fhirCalls += 1;
      if (fhirCalls === 1) return sendJson(res, 503, outcome('transient'), { 'retry-after': '2' });
      return sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
    });
    const id = `cl-probe-${++n}`;
    const other = new RedisCircuitBreaker({ redis, keyPrefix: env.prefix, endpointId: id, now, failureThreshold: 5, cooldownMs: 60_000, closedCacheMs: 0 });
    const { client } = makeClient(redis, env.prefix, s.url, { id }, {
      now,
      breaker: { failureThreshold: 5, cooldownMs: 60_000 },
      // While this call waits out the server's Retry-After, other processes see the endpoint fail and
      // open its circuit; the cool-down has passed when the retry goes out (the real wait outlasts
      // this process's 1 s cache of a "closed" answer).
      sleep: async () => {
        for (let i = 0; i < 5; i += 1) await other.recordFailure();
        t += 61_000;
        await new Promise((resolve) => setTimeout(resolve, 1_100));
      },
    });
    opened.push(() => client.close());
    await expect(client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect(fhirCalls).toBe(2);
    // The endpoint answered: the circuit is closed and other callers are let through.
    expect(await client.circuitState()).toMatchObject({ state: 'closed' });
    expect((await other.admit()).decision).toBe('closed');
  });
});

describe('Retry-After as an HTTP-date from a server whose clock is not ours', () => {
  /** A server whose clock runs `skewMs` from ours: its Date header and its Retry-After date both by its clock. */
  async function skewedServer(skewMs: number, waitSeconds: number): Promise<{ s: TestServer; calls: () => number }> {
    let calls = 0;
    const s = await server((_req, res) => {
      calls += 1;
      const serverNow = Math.floor((Date.now() + skewMs) / 1000) * 1000;
      const date = new Date(serverNow).toUTCString();
      if (calls === 1) return sendJson(res, 503, outcome('transient'), { date, 'retry-after': new Date(serverNow + waitSeconds * 1000).toUTCString() });
      return sendJson(res, 200, { resourceType: 'Patient', id: 'p' }, { date });
    });
    return { s, calls: () => calls };
  }

  it.each([
    ['ten minutes ahead', 600_000],
    ['ten minutes behind', -600_000],
  ])('waits the delay the server meant when its clock is %s (measured from its Date header)', async (_label, skewMs) => {
    const { s, calls } = await skewedServer(skewMs, 5);
    const { client, sleeps } = makeClient(redis, env.prefix, s.url, { id: `cl-skew-${++n}` });
    opened.push(() => client.close());
    await expect(client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect(calls()).toBe(2);
    expect(sleeps).toEqual([5000]);
  });
});

describe('OperationOutcome answered with 200 where a Bundle or resource was asked for', () => {
  it('retries one whose issues are transient, and names the issue codes of one that is not, as an HTTP error of the server', async () => {
    let calls = 0;
    const s = await server((req, res) => {
      calls += 1;
      if (req.url?.startsWith('/Observation') && calls === 1) return sendJson(res, 200, outcome('throttled'));
      if (req.url?.startsWith('/Observation')) return sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', entry: [] });
      return sendJson(res, 200, outcome('not-found'));
    });
    const { client, sleeps } = makeClient(redis, env.prefix, s.url, { id: `cl-oo-${++n}` });
    opened.push(() => client.close());
    const page = await client.search('Observation', { patient: 'p' });
    expect(page.bundle.type).toBe('searchset');
    expect(sleeps).toHaveLength(1);

    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentFhirError);
    expect(err).toMatchObject({ status: 200, issueCodes: ['not-found'] });
    expect((err as FhirHttpError).message).toContain('OperationOutcome');
  });
});
