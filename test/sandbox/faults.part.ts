/**
 * Fault injection: every fault kind behaves as configured, and Nth / range / seeded-probability
 * triggering is deterministic. Also the CLI fault syntax.
 */
import { request as httpRequest } from 'node:http';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { parseFaultSpec, startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { loadFhirKitClient } from './support/fhir-kit-client';

let server: SandboxServer;
const clock = Date.parse('2024-06-01T10:00:00.250Z');

beforeAll(async () => {
  server = await startSandboxServer({ name: 'faults', auth: 'none', now: () => clock });
  await server.load(Array.from({ length: 30 }, (_, i) => ({ resourceType: 'Patient' as const, id: `p${i}` })));
});

afterAll(async () => {
  await server.stop();
});

afterEach(() => {
  server.faults.clear();
  server.latencyMs = 0;
});

/**
 * The status of a GET (or `init`) of `url`, its body read to the end: a body left unread keeps its
 * connection open after the server stops (the client never reads the server's close), and the open
 * sockets kept jest's worker process from exiting.
 */
async function statusOf(url: string, init?: RequestInit): Promise<number> {
  const response = await fetch(url, init);
  await response.arrayBuffer();
  return response.status;
}

async function statuses(url: string, times: number): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < times; i++) {
    result.push(await statusOf(url));
  }
  return result;
}

function socketErrorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code;
}

describe('fault kinds', () => {
  test('latency (rule) and global latency delay the answer', async () => {
    server.faults.add({ match: 'GET /Patient/*', action: { kind: 'latency', ms: 150 } });
    let started = performance.now();
    expect(await statusOf(`${server.baseUrl}/Patient/p1`)).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    server.faults.clear();
    server.latencyMs = 80;
    started = performance.now();
    expect(await statusOf(`${server.baseUrl}/metadata`)).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(75);
  });

  test('429 with Retry-After in seconds, and as an HTTP-date', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'rate-limit', retryAfterSeconds: 2 } });
    const seconds = await fetch(`${server.baseUrl}/Patient`);
    expect(seconds.status).toBe(429);
    expect(seconds.headers.get('retry-after')).toBe('2');
    expect(((await seconds.json()) as OperationOutcome).issue?.[0]?.code).toBe('throttled');
    server.faults.clear();
    server.faults.add({ match: 'GET /Patient', action: { kind: 'rate-limit', retryAfterSeconds: 3, retryAfterFormat: 'http-date' } });
    const date = await fetch(`${server.baseUrl}/Patient`);
    expect(date.status).toBe(429);
    expect(date.headers.get('retry-after')).toBe('Sat, 01 Jun 2024 10:00:04 GMT');
  });

  test('503 and 500 with an OperationOutcome', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'unavailable', retryAfterSeconds: 1 } });
    server.faults.add({ match: 'GET /Patient/*', action: { kind: 'server-error', message: 'database on fire' } });
    const unavailable = await fetch(`${server.baseUrl}/Patient`);
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toBe('1');
    const error = await fetch(`${server.baseUrl}/Patient/p1`);
    expect(error.status).toBe(500);
    expect(await error.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', details: { text: 'database on fire' } }] });
  });

  test('hang: the client times out, and stop() still finishes', async () => {
    const hanging = await startSandboxServer({ name: 'hang', auth: 'none' });
    hanging.faults.add({ match: 'GET /Patient*', action: { kind: 'hang' } });
    const timedOut = fetch(`${hanging.baseUrl}/Patient`, { signal: AbortSignal.timeout(200) });
    await expect(timedOut).rejects.toMatchObject({ name: 'TimeoutError' });
    const stillHanging = fetch(`${hanging.baseUrl}/Patient`).catch((err: unknown) => err);
    await waitFor(() => hanging.requestCount('GET /Patient') === 2);
    const started = performance.now();
    await hanging.stop();
    // Not held up by the hanging request: far below anything it could wait for, with room for a loaded host.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(socketErrorCode(await stillHanging)).toBeDefined();
  });

  test('reset: the connection is dropped without an answer', async () => {
    server.faults.add({ match: 'GET /Patient/*', action: { kind: 'reset' } });
    const failure = await fetch(`${server.baseUrl}/Patient/p1`).catch((err: unknown) => err);
    expect(failure).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(socketErrorCode(failure));
    expect(server.requests().at(-1)?.status).toBeUndefined();
  });

  test('malformed JSON: 200 with a body that does not parse', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'malformed-json' } });
    const response = await fetch(`${server.baseUrl}/Patient?_count=5`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text.startsWith('{"resourceType":"Bundle"')).toBe(true);
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    const { Client } = loadFhirKitClient();
    await expect(new Client({ baseUrl: server.baseUrl }).search({ resourceType: 'Patient' })).rejects.toThrow();
  });

  test('truncated: Content-Length promises more than is sent, then the socket closes', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'truncated', fraction: 0.4 } });
    const { declared, received, error } = await rawGet(`${server.baseUrl}/Patient?_count=30`);
    expect(declared).toBeGreaterThan(1000);
    expect(received).toBe(Math.floor(declared * 0.4));
    expect(error).toBeDefined();
    await expect((await fetch(`${server.baseUrl}/Patient?_count=30`)).text()).rejects.toThrow();
  });

  test('expired token: 401 invalid_token even with a valid token, then fine again', async () => {
    const smart = await startSandboxServer({ name: 'expiring', auth: 'smart' });
    try {
      const headers = { authorization: `Bearer ${smart.issueAccessToken('any-client')}` };
      smart.faults.add({ match: 'GET /Patient*', action: { kind: 'expired-token' }, nth: 2 });
      expect(await statusOf(`${smart.baseUrl}/Patient`, { headers })).toBe(200);
      const expired = await fetch(`${smart.baseUrl}/Patient`, { headers });
      expect(expired.status).toBe(401);
      expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');
      await expired.arrayBuffer();
      expect(await statusOf(`${smart.baseUrl}/Patient`, { headers })).toBe(200);
    } finally {
      await smart.stop();
    }
  });

  test('foreign next link and redirects (for origin-pinning tests)', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'foreign-next-link', origin: 'http://203.0.113.7:8080' } });
    const page = (await (await fetch(`${server.baseUrl}/Patient?_count=5`)).json()) as Bundle;
    const next = page.link?.find((link) => link.relation === 'next')?.url;
    expect(next).toMatch(/^http:\/\/203\.0\.113\.7:8080\/fhir\/Patient\?.*_offset=5/);
    server.faults.add({ match: 'GET /Binary/*', action: { kind: 'redirect', location: 'http://203.0.113.7/secret' } });
    const redirected = await fetch(`${server.baseUrl}/Binary/x`, { redirect: 'manual' });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe('http://203.0.113.7/secret');
    const route = await fetch(`${server.baseUrl}/_sandbox/redirect?to=${encodeURIComponent('http://203.0.113.7/x')}`, { redirect: 'manual' });
    expect(route.status).toBe(302);
    expect(route.headers.get('location')).toBe('http://203.0.113.7/x');
  });
});

describe('triggering', () => {
  test('only the Nth matching request', async () => {
    const id = server.faults.add({ match: 'GET /Patient*', action: { kind: 'rate-limit', retryAfterSeconds: 1 }, nth: 3 });
    expect(await statuses(`${server.baseUrl}/Patient/p1`, 5)).toEqual([200, 200, 429, 200, 200]);
    expect(await statusOf(`${server.baseUrl}/metadata`)).toBe(200);
    expect(server.faults.rule(id)).toMatchObject({ matched: 5, fired: 1 });
  });

  test('requests N to M, counting only matching ones', async () => {
    server.faults.add({ match: 'GET /Patient', action: { kind: 'unavailable' }, from: 2, to: 3 });
    const urls = [`${server.baseUrl}/Patient`, `${server.baseUrl}/Patient/p1`];
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(...(await statuses(urls[0], 1)), ...(await statuses(urls[1], 1)));
    }
    expect(seen).toEqual([200, 200, 503, 200, 503, 200, 200, 200, 200, 200]);
  });

  test('probability with a seed: the same pattern every run, another with another seed', async () => {
    const patternWith = async (seed: number): Promise<number[]> => {
      server.faults.clear();
      server.faults.add({ match: 'GET /Patient/*', action: { kind: 'server-error' }, probability: 0.3, seed });
      return statuses(`${server.baseUrl}/Patient/p1`, 40);
    };
    const first = await patternWith(42);
    const again = await patternWith(42);
    const other = await patternWith(7);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    const failures = first.filter((status) => status === 500).length;
    expect(failures).toBeGreaterThan(4);
    expect(failures).toBeLessThan(24);
  });

  test('two servers with the same seed fault identically (server seed, no rule seed)', async () => {
    const servers = await Promise.all([1, 2].map((n) => startSandboxServer({ name: `seeded-${n}`, auth: 'none', seed: 99 })));
    try {
      const patterns = [];
      for (const seeded of servers) {
        seeded.faults.add({ match: 'GET /metadata', action: { kind: 'reset' }, probability: 0.5 });
        const pattern: string[] = [];
        for (let i = 0; i < 20; i++) {
          pattern.push(await statusOf(`${seeded.baseUrl}/metadata`).then(String, () => 'reset'));
        }
        patterns.push(pattern);
      }
      expect(patterns[0]).toEqual(patterns[1]);
      expect(new Set(patterns[0])).toEqual(new Set(['200', 'reset']));
    } finally {
      await Promise.all(servers.map((seeded) => seeded.stop()));
    }
  });

  test('patterns match method and path; globs with ? include the query', async () => {
    server.faults.add({ match: 'POST /Patient*', action: { kind: 'server-error' } });
    server.faults.add({ match: 'GET /Patient?*_offset=*', action: { kind: 'unavailable' } });
    expect(await statuses(`${server.baseUrl}/Patient`, 1)).toEqual([200]);
    expect(await statuses(`${server.baseUrl}/Patient?_count=2&_offset=2`, 1)).toEqual([503]);
    expect(await statusOf(`${server.baseUrl}/Patient`, { method: 'POST', body: '{}' })).toBe(500);
  });
});

describe('CLI fault syntax', () => {
  test('parses the documented examples', () => {
    expect(parseFaultSpec('care-team-a:GET /Observation*:429:retryAfter=2:nth=3')).toEqual({
      server: 'care-team-a',
      rule: { match: 'GET /Observation*', action: { kind: 'rate-limit', retryAfterSeconds: 2 }, nth: 3 },
    });
    expect(parseFaultSpec('*:GET /Patient*:503:retryAfter=1:retryAfterFormat=http-date:from=2:to=3').rule).toEqual({
      match: 'GET /Patient*',
      action: { kind: 'unavailable', retryAfterSeconds: 1, retryAfterFormat: 'http-date' },
      from: 2,
      to: 3,
    });
    expect(parseFaultSpec('care-team-b:GET /Patient:foreign-next-link:origin=http://127.0.0.1:9').rule.action).toEqual({
      kind: 'foreign-next-link',
      origin: 'http://127.0.0.1:9',
    });
    expect(parseFaultSpec('care-team-a:GET /Observation*:reset:p=0.1:seed=42').rule).toMatchObject({ probability: 0.1, seed: 42 });
    expect(parseFaultSpec('referring-ehr:* /Binary/*:latency:ms=250').rule.action).toEqual({ kind: 'latency', ms: 250 });
  });

  test('explains what is wrong', () => {
    expect(() => parseFaultSpec('care-team-a')).toThrow(/expected/);
    expect(() => parseFaultSpec('care-team-a:GET /x:explode')).toThrow(/unknown action/);
    expect(() => parseFaultSpec('care-team-a:GET /x:429:nth=zero')).toThrow(/not a number/);
    expect(() => parseFaultSpec('care-team-a:GET /x:429:colour=red')).toThrow(/unknown option/);
  });
});

/** A GET with node:http, reporting the declared and received body length and any socket error. */
function rawGet(url: string): Promise<{ declared: number; received: number; error: Error | undefined }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, (res) => {
      const declared = Number(res.headers['content-length']);
      let received = 0;
      let error: Error | undefined;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('error', (err) => (error = err));
      res.on('close', () => resolve({ declared, received, error: error ?? (res.complete ? undefined : new Error('incomplete')) }));
    });
    req.on('error', (error) => resolve({ declared: 0, received: 0, error }));
    req.end();
  });
}

/** Waits (on the event loop, no fixed sleeps) until `condition` holds. */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}
