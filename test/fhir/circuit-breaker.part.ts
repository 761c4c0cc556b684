import { jest } from '@jest/globals';
import { RedisCircuitBreaker } from '../../src/fhir/circuit-breaker';
import { RedisRateLimiter } from '../../src/fhir/rate-limiter';
import { CircuitOpenError, ServerRetryAfterError } from '../../src/fhir/errors';
import { makeClient } from './support/client';
import { outcome, sendJson, startTestServer } from './support/http-server';
import { testRedis, type TestRedis } from './support/redis';
import { eventually } from '../support/service';

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

  it('sends nothing, from any process, before the time a Retry-After beyond the in-request limit names, then probes', async () => {
    let busy = true;
    const server = await startTestServer((_req, res) =>
      busy ? sendJson(res, 429, outcome('throttled'), { 'retry-after': '3600' }) : sendJson(res, 200, { resourceType: 'Patient', id: 'p' }),
    );
    const c = clock();
    const endpoint = { id: `held-${++n}` };
    const deps = { now: c.now, retry: { maxRetryAfterMs: 120_000 }, breaker: { failureThreshold: 1 } };
    const first = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, endpoint, deps);
    const err = await first.client.read('Patient', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerRetryAfterError);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 3_600_000, retryAt: c.now() + 3_600_000, retryable: true, attempts: 1 });
    expect(first.sleeps).toEqual([]); // not retried in-request
    expect(server.requests).toHaveLength(1);
    // Not counted as a failure, though one would open this circuit: it is held, until the time asked.
    expect(await first.client.circuitState()).toEqual({ state: 'open', failures: 0, retryAt: c.now() + 3_600_000 });

    // This process and another one (its own client on the same Redis) wait, without a request.
    const second = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, endpoint, deps);
    c.advance(3_600_000 - 1);
    for (const { client } of [first, second]) {
      await expect(client.read('Patient', 'p')).rejects.toMatchObject({ name: 'CircuitOpenError', retryAt: c.now() + 1 });
    }
    expect(server.requests).toHaveLength(1);

    // Then one probe, which closes the circuit.
    c.advance(1);
    busy = false;
    await expect(second.client.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
    expect(server.requests).toHaveLength(2);
    expect(await first.client.circuitState()).toEqual({ state: 'closed', failures: 0 });
    await Promise.all([first.client.close(), second.client.close()]);
    await server.close();
  });
  it('sends the half-open probe even when its caller withdraws it while it waits for a slot (else every process is refused until the probe lease ends)', async () => {
    let healthy = false;
    const server = await startTestServer((_req, res) => (healthy ? sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset' }) : sendJson(res, 503, outcome('transient'))));
    const c = clock();
    const { client } = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, { maxConcurrency: 1 }, {
      now: c.now,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, cooldownMs: 60_000 },
    });
    const acquire = jest.spyOn(RedisRateLimiter.prototype, 'acquire');
    try {
      await expect(client.search('Condition', {})).rejects.toMatchObject({ status: 503 });
      expect(await client.circuitState()).toMatchObject({ state: 'open' });
      c.advance(60_000);
      healthy = true;
      // The endpoint's only slot is taken elsewhere: the next call (the probe) waits for it.
      const other = new RedisRateLimiter({ redis: env.connect(), keyPrefix: env.prefix, endpointId: client.endpoint.id, limits: { maxRequestsPerSecond: 1000, maxConcurrency: 1 } });
      const held = await other.acquire();
      const calls = acquire.mock.calls.length;
      const stop = new AbortController();
      const probe = client.search('Condition', {}, (raw) => JSON.parse(raw.toString()) as { resourceType: string }, { stopBeforeSend: stop.signal });
      await eventually(async () => acquire.mock.calls.length, (n) => n > calls, 5_000);
      stop.abort();
      await held.lease.release();
      await expect(probe).resolves.toMatchObject({ resourceType: 'Bundle' });
      expect(server.requests).toHaveLength(2);
      expect(await client.circuitState()).toMatchObject({ state: 'closed' });
    } finally {
      acquire.mockRestore();
      await client.close();
      await server.close();
    }
  });
});
