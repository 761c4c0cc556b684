import { RedisCircuitBreaker } from '../../src/fhir/circuit-breaker';
import { CircuitOpenError } from '../../src/fhir/errors';
import { makeClient } from './support/client';
import { outcome, sendJson, startTestServer } from './support/http-server';
import { testRedis, type TestRedis } from './support/redis';

let env: TestRedis;
let n = 0;
beforeAll(() => {
  env = testRedis('breaker');
});
afterAll(() => env.cleanup());

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('RedisCircuitBreaker', () => {
  const make = (now: () => number, id = `b-${++n}`) =>
    new RedisCircuitBreaker({ redis: env.connect(), keyPrefix: env.prefix, endpointId: id, failureThreshold: 3, windowMs: 10_000, cooldownMs: 30_000, probeLeaseMs: 5_000, now });

  it('opens after N consecutive failures, fails fast until the cool-down, then lets exactly one probe through', async () => {
    const c = clock();
    const breaker = make(c.now);
    expect(await breaker.admit()).toEqual({ decision: 'closed', failures: 0 });
    expect(await breaker.recordFailure()).toEqual({ state: 'closed' });
    expect(await breaker.recordFailure()).toEqual({ state: 'closed' });
    const opened = await breaker.recordFailure();
    expect(opened).toEqual({ state: 'open', retryAt: c.now() + 30_000 });
    expect(await breaker.admit()).toEqual({ decision: 'open', retryAt: c.now() + 30_000 });
    expect(await breaker.snapshot()).toMatchObject({ state: 'open', failures: 3, retryAt: c.now() + 30_000 });

    c.advance(29_999);
    expect((await breaker.admit()).decision).toBe('open');
    c.advance(1);
    expect(await breaker.snapshot()).toMatchObject({ state: 'half-open' });
    expect(await breaker.admit()).toEqual({ decision: 'probe' });
    // While the probe runs, everyone else still fails fast.
    expect(await breaker.admit()).toEqual({ decision: 'open', retryAt: c.now() + 5_000 });

    await breaker.recordSuccess();
    expect(await breaker.snapshot()).toEqual({ state: 'closed', failures: 0 });
    expect(await breaker.admit()).toEqual({ decision: 'closed', failures: 0 });
  });

  it('re-opens for a full cool-down when the probe fails', async () => {
    const c = clock();
    const breaker = make(c.now);
    for (let i = 0; i < 3; i += 1) await breaker.recordFailure();
    c.advance(30_000);
    expect((await breaker.admit()).decision).toBe('probe');
    c.advance(1_000);
    expect(await breaker.recordFailure()).toEqual({ state: 'open', retryAt: c.now() + 30_000 });
    expect(await breaker.admit()).toMatchObject({ decision: 'open' });
  });

  it('gives the probe to someone else when the probing worker vanishes', async () => {
    const c = clock();
    const id = `b-${++n}`;
    const one = make(c.now, id);
    const two = make(c.now, id);
    for (let i = 0; i < 3; i += 1) await one.recordFailure();
    c.advance(30_000);
    expect((await one.admit()).decision).toBe('probe');
    expect((await two.admit()).decision).toBe('open');
    c.advance(5_000);
    expect((await two.admit()).decision).toBe('probe');
  });

  it('counts only consecutive failures within the window', async () => {
    const c = clock();
    const breaker = make(c.now);
    await breaker.recordFailure();
    await breaker.recordFailure();
    await breaker.recordSuccess();
    await breaker.recordFailure();
    await breaker.recordFailure();
    expect((await breaker.snapshot()).state).toBe('closed');
    c.advance(10_001); // the run of failures is too old
    expect(await breaker.recordFailure()).toEqual({ state: 'closed' });
    expect(await breaker.snapshot()).toMatchObject({ failures: 1 });
  });
});

describe('FhirEndpointClient with the breaker', () => {
  it('stops sending after N failed requests, fails fast with CircuitOpenError, and recovers through a probe', async () => {
    let healthy = false;
    const server = await startTestServer((_req, res) => (healthy ? sendJson(res, 200, { resourceType: 'Patient', id: 'p' }) : sendJson(res, 503, outcome('transient'))));
    const c = clock();
    const { client, events } = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, {}, {
      now: c.now,
      retry: { maxAttempts: 2 },
      breaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    for (let i = 0; i < 3; i += 1) await expect(client.read('Patient', 'p')).rejects.toMatchObject({ status: 503 });
    expect(server.requests).toHaveLength(6); // 3 requests × 2 attempts
    expect(events).toContainEqual({ type: 'circuit-open', endpointId: client.endpoint.id, cause: 'opened', retryAt: c.now() + 60_000 });

    const err = await client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ retryAt: c.now() + 60_000, retryable: true });
    expect(server.requests).toHaveLength(6); // nothing sent
    expect(await client.circuitState()).toMatchObject({ state: 'open' });

    c.advance(60_000);
    healthy = true;
    await expect(client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect(await client.circuitState()).toMatchObject({ state: 'closed' });
    await client.close();
    await server.close();
  });

  it('does not count answers like 404 as endpoint failures', async () => {
    const server = await startTestServer((_req, res) => sendJson(res, 404, outcome('not-found')));
    const { client } = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, {}, { breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 4; i += 1) await expect(client.read('Patient', 'x')).rejects.toMatchObject({ status: 404 });
    expect(await client.circuitState()).toMatchObject({ state: 'closed' });
    await client.close();
    await server.close();
  });
});
