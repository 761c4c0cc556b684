import type { Redis } from 'ioredis';
import { RedisRateLimiter } from '../../src/fhir/rate-limiter';
import { makeClient } from './support/client';
import { sendJson, startTestServer } from './support/http-server';
import { testRedis, type TestRedis } from './support/redis';

let env: TestRedis;
let n = 0;

beforeAll(() => {
  env = testRedis('limit');
});
afterAll(() => env.cleanup());

function limiter(redis: Redis, endpointId: string, maxRequestsPerSecond: number, maxConcurrency: number, leaseMs?: number) {
  return new RedisRateLimiter({ redis, keyPrefix: env.prefix, endpointId, limits: { maxRequestsPerSecond, maxConcurrency }, leaseMs });
}

/** Most grants inside any window of `windowMs`. */
function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i += 1) {
    while ((sorted[i] ?? 0) - (sorted[j] ?? 0) >= windowMs) j += 1;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

it('holds two processes together to the request rate', async () => {
  const id = `rate-${++n}`;
  const a = limiter(env.connect(), id, 20, 100);
  const b = limiter(env.connect(), id, 20, 100);
  // The limiter's calls to Redis (its acquire script), counted: waiting by computed delay asks ~5 times
  // per grant here (the four workers wake for the same free moment; one takes it, the others are told
  // the next); polling every 10 ms would ask ~20 times.
  const asks = jest.spyOn(RedisRateLimiter.prototype as unknown as { script(leaseId: string, takeSlot: boolean): Promise<[number, number]> }, 'script');
  const grants: number[] = [];
  const worker = async (l: RedisRateLimiter) => {
    for (let i = 0; i < 15; i += 1) {
      const { lease } = await l.acquire();
      grants.push(Date.now());
      await lease.release();
    }
  };
  const started = Date.now();
  let asked: number;
  try {
    await Promise.all([worker(a), worker(b), worker(a), worker(b)]);
  } finally {
    asked = asks.mock.calls.length;
    asks.mockRestore();
  }
  const elapsed = Date.now() - started;
  expect(grants).toHaveLength(60);
  // 60 starts at 20/s with burst 1: at least 59 intervals of 50 ms.
  expect(elapsed).toBeGreaterThanOrEqual(59 * 50 - 20);
  expect(maxInWindow(grants, 1000)).toBeLessThanOrEqual(21);
  // and waiting is by computed delay, not coarse polling: judged by the asks per grant rather than by
  // the elapsed time, which every late timer on a loaded machine pushes back (each grant waits from
  // the one before it).
  process.stdout.write(`rate limiter: ${asked} asks for 60 grants in ${elapsed} ms\n`);
  expect(asked).toBeLessThanOrEqual(60 * 8);
  expect(elapsed).toBeLessThan(59 * 50 * 4);
});

it('holds two processes together to the concurrency limit', async () => {
  const id = `conc-${++n}`;
  const a = limiter(env.connect(), id, 1000, 3);
  const b = limiter(env.connect(), id, 1000, 3);
  let held = 0;
  let maxHeld = 0;
  const task = async (l: RedisRateLimiter) => {
    const { lease } = await l.acquire();
    held += 1;
    maxHeld = Math.max(maxHeld, held);
    await new Promise((r) => setTimeout(r, 25));
    held -= 1;
    await lease.release();
  };
  await Promise.all(Array.from({ length: 16 }, (_, i) => task(i % 2 === 0 ? a : b)));
  expect(maxHeld).toBe(3);
  expect(await a.inFlight()).toBe(0);
});

it('frees the slots of a crashed worker when its leases expire', async () => {
  const id = `crash-${++n}`;
  const crashing = env.connect();
  const a = limiter(crashing, id, 1000, 2, 400);
  // Timed from before the leases were taken: neither can expire sooner than 400 ms after this.
  const started = Date.now();
  await a.acquire();
  await a.acquire();
  crashing.disconnect(); // the process dies: no release, no renewal
  const b = limiter(env.connect(), id, 1000, 2, 400);
  const { lease } = await b.acquire();
  const waited = Date.now() - started;
  expect(waited).toBeGreaterThanOrEqual(390);
  expect(waited).toBeLessThan(5000);
  await lease.release();
});

it('renews the lease of a long request so its slot is not given away', async () => {
  const id = `renew-${++n}`;
  // A 900 ms lease, renewed every 300 ms: a renewal may come up to 600 ms late (an event loop or Redis
  // held up on a loaded machine) before the lease lapses; a 150 ms lease lapsed under CI's load.
  const LEASE_MS = 900;
  const a = limiter(env.connect(), id, 1000, 1, LEASE_MS);
  const { lease } = await a.acquire();
  let second = false;
  const waiting = a.acquire().then((r) => {
    second = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 3 * LEASE_MS + 200)); // > 3 lease lifetimes: only renewal keeps it
  expect(second).toBe(false);
  await lease.release();
  await (await waiting).lease.release();
  expect(second).toBe(true);
});

it('two FhirEndpointClients on one endpoint stay within its rate and concurrency, measured at the server', async () => {
  const server = await startTestServer(async (_req, res) => {
    await new Promise((r) => setTimeout(r, 40));
    sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
  });
  const endpoint = { id: `e2e-${++n}`, maxRequestsPerSecond: 25, maxConcurrency: 2 };
  const one = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, endpoint);
  const two = makeClient(env.connect(), env.prefix, `${server.url}/fhir`, endpoint);
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).client.read('Patient', `p${i}`)));
  expect(server.requests).toHaveLength(20);
  expect(server.stats.maxInFlight).toBeLessThanOrEqual(2);
  const times = server.requests.map((r) => r.at);
  expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(26);
  // 20 arrivals at 25/s span at least 19 × 40 ms; the slack is for the first request of each client
  // (a new connection) arriving late, which shortens the span.
  expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(19 * 40 - 200);
  expect(one.events.concat(two.events).some((e) => e.type === 'throttled')).toBe(true);
  await Promise.all([one.client.close(), two.client.close(), server.close()]);
});
