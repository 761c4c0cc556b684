import type { Bundle } from 'fhir/r4';
import type { Redis } from 'ioredis';
import {
  FhirHttpError,
  FhirNetworkError,
  MalformedResponseError,
  OffOriginUrlError,
  PermanentFhirError,
  ServerRetryAfterError,
  UrlRefusedError,
} from '../../src/fhir/errors';
import type { RetryEvent } from '../../src/fhir/events';
import { scanSearchPage } from '../../src/fhir/fhir-json';
import { makeClient } from './support/client';
import { outcome, sendJson, startTestServer, type TestServer } from './support/http-server';
import { startMiniFhir, type MiniFhir } from './support/mini-fhir';
import { testRedis, type TestRedis } from './support/redis';

let env: TestRedis;
let redis: Redis;
let fhir: MiniFhir;
let gz: MiniFhir;
let other: TestServer;

beforeAll(async () => {
  env = testRedis('client');
  redis = env.connect();
  fhir = await startMiniFhir({ total: 25 });
  gz = await startMiniFhir({ total: 1200, gzip: true });
  other = await startTestServer((_req, res) => sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset' }));
});

afterAll(async () => {
  await Promise.all([fhir.close(), gz.close(), other.close()]);
  await env.cleanup();
});

beforeEach(() => {
  fhir.faults.length = 0;
});

const harness = (base = fhir.url, endpoint = {}, deps = {}) => makeClient(redis, env.prefix, base, endpoint, deps);

describe('reading and paging', () => {
  it('reads the CapabilityStatement and a resource with FHIR JSON headers', async () => {
    const { client } = harness();
    const cap = await client.capabilities();
    expect(cap.fhirVersion).toBe('4.0.1');
    const patient = await client.read('Patient', 'p1');
    expect(patient).toMatchObject({ resourceType: 'Patient', id: 'p1' });
    const seen = fhir.server.requests.at(-1);
    expect(seen?.headers.accept).toBe('application/fhir+json');
    expect(seen?.headers['accept-encoding']).toBe('gzip');
    expect(seen?.headers['user-agent']).toMatch(/^second-opinion-bridge\//);
    await client.close();
  });

  it('pages through a search, keeping the exact bytes of each page', async () => {
    const { client, events } = harness();
    const before = fhir.served.length;
    let page = await client.search('Observation', { _count: '10', code: ['http://loinc.org|718-7'] });
    const ids: string[] = [];
    const raws: Buffer[] = [];
    for (;;) {
      ids.push(...(page.bundle.entry ?? []).map((e) => e.resource?.id ?? ''));
      raws.push(page.raw);
      expect(page.bytes).toBe(page.raw.length);
      if (!page.nextUrl) break;
      page = await client.fetchPage(page.nextUrl);
    }
    expect(ids).toHaveLength(25);
    expect(new Set(ids).size).toBe(25);
    expect(raws).toEqual(fhir.served.slice(before));
    expect(events.filter((e) => e.type === 'request').map((e) => e.type === 'request' && e.kind)).toEqual(['search', 'page', 'page']);
    await client.close();
  });

  it('decodes gzip pages in one shot and hands back the decoded bytes', async () => {
    const { client } = harness(gz.url);
    const page = await client.search('Observation', { _count: '500' });
    expect(page.bundle.entry).toHaveLength(500);
    expect(page.raw.equals(gz.served.at(-1) ?? Buffer.alloc(0))).toBe(true);
    expect(page.wireBytes).toBeLessThan(page.bytes / 5);
    const last = await client.fetchPage(page.nextUrl ?? '');
    expect(last.bundle.entry?.[0]?.resource?.id).toBe('obs-500');
    await client.close();
  });

  it('runs $everything-style operations relative to the base', async () => {
    const server = await startTestServer((req, res) => sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: req.url }] }));
    const { client } = harness(`${server.url}/fhir`);
    const page = await client.operation('Patient/p1/$everything', { _count: '500' });
    expect(page.bundle.type).toBe('searchset');
    expect(server.requests[0]?.url).toBe('/fhir/Patient/p1/$everything?_count=500');
    await expect(client.operation('https://evil.example.net/x')).rejects.toThrow(RangeError);
    await expect(client.operation('../admin')).rejects.toThrow(RangeError);
    await client.close();
    await server.close();
  });

  it("hands each page the response's Date header (the server's own clock), to any page reader", async () => {
    const date = 'Tue, 03 Nov 2026 09:15:07 GMT';
    const server = await startTestServer((_req, res) => sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset' }, { date }));
    const { client } = harness(`${server.url}/fhir`);
    expect((await client.search('Observation', {})).date).toBe(date);
    expect((await client.search('Observation', {}, scanSearchPage)).date).toBe(date);
    expect((await client.operation('Patient/p1/$everything', {}, scanSearchPage)).date).toBe(date);
    expect((await client.fetchPage(`${server.url}/fhir?page=2`, scanSearchPage)).date).toBe(date);
    await client.close();
    await server.close();
  });
});

describe('relative next links', () => {
  it('follows a query-only next link as the next page of the same search, and a base-relative one from the base (RFC 3986 §5.2)', async () => {
    const next = (url: string) => ({ resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'next', url }], entry: [] });
    const server = await startTestServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/fhir/Observation?patient=p1') sendJson(res, 200, next('?page=2'));
      else if (url === '/fhir/Patient/p1/$everything') sendJson(res, 200, next('Patient/p1/$everything?page=2'));
      else sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', entry: [] });
    });
    const { client } = harness(`${server.url}/fhir`);
    const first = await client.search('Observation', { patient: 'p1' });
    expect(first.nextUrl).toBe(`${server.url}/fhir/Observation?page=2`);
    await client.fetchPage(first.nextUrl ?? '');
    expect(server.requests.map((r) => r.url)).toEqual(['/fhir/Observation?patient=p1', '/fhir/Observation?page=2']);
    expect((await client.operation('Patient/p1/$everything')).nextUrl).toBe(`${server.url}/fhir/Patient/p1/$everything?page=2`);
    await client.close();
    await server.close();
  });
});

describe('retries', () => {
  it('honours Retry-After seconds on 429 and reports the throttling', async () => {
    fhir.faults.push({ type: 'status', status: 429, headers: { 'retry-after': '2' }, body: outcome('throttled') });
    const { client, sleeps, events } = harness();
    await expect(client.read('Patient', 'p1')).resolves.toMatchObject({ id: 'p1' });
    expect(sleeps).toEqual([2000]);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'retry', attempt: 1, delayMs: 2000, reason: 'http-429' }),
        expect.objectContaining({ type: 'throttled', source: 'server', waitMs: 2000 }),
      ]),
    );
    await client.close();
  });

  it("holds every request to the endpoint for the Retry-After of a 429, not only the one it refused (RFC 6585 §4)", async () => {
    fhir.faults.push({ type: 'status', status: 429, headers: { 'retry-after': '1' }, body: outcome('throttled') });
    // The hold is real time (Redis's clock): the client's sleeps are real here. The refused request
    // sleeps once the hold is in place, which tells the test when to send the other one.
    let held: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const sleep = (ms: number): Promise<void> => {
      held();
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    };
    const { client } = harness(fhir.url, {}, { sleep, limiter: { holdOnRetryAfter: true } });
    const seen = fhir.server.requests.length;
    const refused = client.read('Patient', 'p1');
    // Another request, sent once the first was refused: it waits until the server said to come back.
    await holding;
    const refusedAt = (fhir.server.requests[seen] as { at: number }).at;
    await expect(client.read('Patient', 'p2')).resolves.toMatchObject({ id: 'p2' });
    await expect(refused).resolves.toMatchObject({ id: 'p1' });
    const later = fhir.server.requests.slice(seen + 1);
    expect(later).toHaveLength(2);
    for (const r of later) expect(r.at - refusedAt).toBeGreaterThanOrEqual(950);
    await client.close();
  });

  it('honours a Retry-After HTTP-date on 503, measured from the Date the server sent with it', async () => {
    // The injected clock is the server's clock too: an HTTP-date is read against the response's Date.
    const now = Date.parse('2025-03-01T12:00:00Z');
    fhir.faults.push({ type: 'status', status: 503, headers: { date: 'Sat, 01 Mar 2025 12:00:00 GMT', 'retry-after': 'Sat, 01 Mar 2025 12:00:09 GMT' } });
    const { client, sleeps } = harness(fhir.url, {}, { now: () => now });
    await client.read('Patient', 'p1');
    expect(sleeps).toEqual([9000]);
    await client.close();
  });

  it('honours a Retry-After in the asctime form on 503 (RFC 9110 §5.6.7), not its own shorter backoff', async () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    fhir.faults.push({ type: 'status', status: 503, headers: { date: 'Sat, 01 Mar 2025 12:00:00 GMT', 'retry-after': 'Sat Mar  1 12:00:07 2025' } });
    const { client, sleeps } = harness(fhir.url, {}, { now: () => now });
    await expect(client.read('Patient', 'p1')).resolves.toMatchObject({ id: 'p1' });
    expect(sleeps).toEqual([7000]);
    await client.close();
  });

  it('retries a 500 whose OperationOutcome is transient, and not one that is invalid', async () => {
    fhir.faults.push({ type: 'status', status: 500, body: outcome('transient') }, { type: 'status', status: 500, body: outcome('lock-error') });
    const { client, sleeps } = harness();
    await client.read('Patient', 'p1');
    expect(sleeps).toHaveLength(2);

    fhir.faults.push({ type: 'status', status: 500, body: outcome('invalid') });
    const before = fhir.server.requests.length;
    const err = await client.read('Patient', 'p1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentFhirError);
    expect(err).toMatchObject({ status: 500, issueCodes: ['invalid'], retryable: false, attempts: 1 });
    expect(fhir.server.requests.length - before).toBe(1);
    await client.close();
  });

  it('gives up at once on 404 not-found', async () => {
    const { client, sleeps } = harness();
    const err = await client.read('Patient', 'missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentFhirError);
    expect(err).toMatchObject({ status: 404, issueCodes: ['not-found'], permanent: true });
    expect(sleeps).toEqual([]);
    await client.close();
  });

  it.each([
    ['connection reset', { type: 'reset' as const }],
    ['malformed JSON', { type: 'malformed' as const }],
    ['truncated body', { type: 'truncate' as const }],
  ])('retries a page after a %s', async (_name, fault) => {
    fhir.faults.push(fault);
    const { client, events } = harness();
    const page = await client.search('Observation', { _count: '5' });
    expect(page.bundle.entry).toHaveLength(5);
    const retry = events.find((e): e is RetryEvent => e.type === 'retry');
    expect(retry?.reason).toMatch(/network|malformed/);
    await client.close();
  });

  it('times out a hanging request (headers and body share one deadline)', async () => {
    fhir.faults.push({ type: 'hang' });
    const { client } = harness(fhir.url, { timeoutMs: 300 }, { retry: { maxAttempts: 1 } });
    const started = Date.now();
    const err = await client.read('Patient', 'p1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirNetworkError);
    expect(err).toMatchObject({ reason: 'timeout', retryable: true });
    // Far below a hang (the fault never answers), with room for a loaded host.
    expect(Date.now() - started).toBeLessThan(10_000);
    await client.close();
  });

  it('after exhausting retries throws a retryable FhirHttpError', async () => {
    fhir.faults.push({ type: 'status', status: 503 }, { type: 'status', status: 503 });
    const { client } = harness(fhir.url, {}, { retry: { maxAttempts: 2 } });
    const err = await client.read('Patient', 'p1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirHttpError);
    expect(err).not.toBeInstanceOf(PermanentFhirError);
    expect(err).toMatchObject({ status: 503, retryable: true, attempts: 2 });
    expect(await client.circuitState()).toMatchObject({ state: 'closed', failures: 1 });
    await client.close();
  });

  it('after exhausting retries on answers naming a Retry-After, holds the endpoint until the last one says (RFC 9110 §10.2.3)', async () => {
    fhir.faults.push(
      { type: 'status', status: 503, headers: { 'retry-after': '1' } },
      { type: 'status', status: 503, headers: { 'retry-after': '30' } },
    );
    const { client, sleeps } = harness(fhir.url, {}, { retry: { maxAttempts: 2 } });
    const before = fhir.server.requests.length;
    const err = await client.read('Patient', 'p1').catch((e: unknown) => e);
    expect(sleeps).toEqual([1000]);
    // Not a plain failure the job's own backoff (seconds) would retry sooner: the job waits as for a paused endpoint.
    expect(err).toBeInstanceOf(ServerRetryAfterError);
    expect(err).toMatchObject({ status: 503, retryable: true, retryAfterMs: 30_000, attempts: 2 });
    const { retryAt } = err as ServerRetryAfterError;
    expect(retryAt - Date.now()).toBeGreaterThan(25_000);
    // Counted as the failure it is, and held: nothing more is sent before then.
    expect(await client.circuitState()).toEqual({ state: 'open', failures: 1, retryAt });
    await expect(client.read('Patient', 'p1')).rejects.toMatchObject({ name: 'CircuitOpenError', retryAt });
    expect(fhir.server.requests.length - before).toBe(2);
    await client.close();
  });

  it('does not resend a plain transaction after an ambiguous 500', async () => {
    const server = await startTestServer((_req, res) => sendJson(res, 500, outcome('transient')));
    const { client } = harness(`${server.url}/fhir`);
    const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: [] };
    await expect(client.transaction(bundle)).rejects.toMatchObject({ status: 500, retryable: true, attempts: 1 });
    expect(server.requests).toHaveLength(1);
    await client.close();
    await server.close();
  });
});

describe('SSRF guard', () => {
  it('refuses an off-origin next link before sending anything there', async () => {
    const { client } = harness();
    const before = other.requests.length;
    await expect(client.fetchPage(`${other.url}/fhir/Observation?_offset=10`)).rejects.toThrow(OffOriginUrlError);
    await expect(client.fetchPage('http://169.254.169.254/latest/meta-data/')).rejects.toThrow(OffOriginUrlError);
    expect(other.requests.length).toBe(before);
    await client.close();
  });

  it('follows a same-origin redirect and refuses an off-origin one', async () => {
    const server = await startTestServer((req, res) => {
      if (req.url === '/fhir/Patient/moved') return void res.writeHead(301, { location: '/fhir/Patient/p1' }).end();
      if (req.url === '/fhir/Patient/away') return void res.writeHead(302, { location: `${other.url}/fhir/Patient/p1` }).end();
      if (req.url === '/fhir/Patient/meta') return void res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      if (req.url === '/fhir/Patient/loop') return void res.writeHead(302, { location: '/fhir/Patient/loop' }).end();
      sendJson(res, 200, { resourceType: 'Patient', id: 'p1' });
    });
    const { client } = harness(`${server.url}/fhir`);
    await expect(client.read('Patient', 'moved')).resolves.toMatchObject({ id: 'p1' });
    const before = other.requests.length;
    await expect(client.read('Patient', 'away')).rejects.toMatchObject({ name: 'OffOriginUrlError', context: 'redirect' });
    await expect(client.read('Patient', 'meta')).rejects.toThrow(OffOriginUrlError);
    expect(other.requests.length).toBe(before);
    await expect(client.read('Patient', 'loop')).rejects.toThrow('too many redirects');
    expect(server.requests.filter((r) => r.url === '/fhir/Patient/loop')).toHaveLength(4);
    await client.close();
    await server.close();
  });

  it.each(['http://169.254.169.254/', 'http://10.0.0.1/', 'http://[fd00::1]/fhir'])('refuses endpoint %s before connecting', async (base) => {
    const { client, events } = harness(base);
    await expect(client.capabilities()).rejects.toThrow(UrlRefusedError);
    expect(events).toEqual([]);
    await client.close();
  });

  it('refuses https-less endpoints that are not marked insecure', async () => {
    const { client } = harness(fhir.url, { allowInsecureHttp: false });
    await expect(client.capabilities()).rejects.toThrow('https required');
    await client.close();
  });

  it('pins connections to checked addresses: a name that rebinds to 10.0.0.1 is refused at connect', async () => {
    let lookups = 0;
    const resolve = async () => {
      lookups += 1;
      // First answer (the pre-flight check) is the sandbox; the connection's own lookup gets a private address.
      return [{ address: lookups === 1 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    };
    const { client } = harness(`http://ehr.test:${fhir.server.port}/fhir`, {}, { resolve, retry: { maxAttempts: 1 } });
    const err = await client.capabilities().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirNetworkError);
    expect(err).toMatchObject({ code: 'ERR_FHIR_ADDRESS_REFUSED', permanent: true });
    expect(lookups).toBe(2);
    await client.close();
  });
});

describe('writes', () => {
  it('creates conditionally with If-None-Exist: 201 then 200', async () => {
    let created = false;
    const server = await startTestServer((req, res, body) => {
      const resource = JSON.parse(body.toString()) as { resourceType: string };
      const status = created ? 200 : 201;
      created = true;
      sendJson(res, status, { ...resource, id: 'dr1', meta: { versionId: '1' } }, { location: `${req.headers.host ? `http://${req.headers.host}` : ''}/fhir/DiagnosticReport/dr1/_history/1` });
    });
    const { client } = harness(`${server.url}/fhir`);
    const report = { resourceType: 'DiagnosticReport' as const, status: 'final' as const, code: { text: 'Consult note' } };
    const first = await client.createConditional(report, 'identifier=urn:sob|case-1');
    expect(first).toMatchObject({ status: 201, resource: { id: 'dr1' } });
    expect(first.location).toMatch(/\/fhir\/DiagnosticReport\/dr1\/_history\/1$/);
    const second = await client.createConditional(report, '?identifier=urn:sob|case-1');
    expect(second.status).toBe(200);
    const seen = server.requests[1];
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/fhir/DiagnosticReport');
    expect(seen?.headers['if-none-exist']).toBe('identifier=urn:sob|case-1');
    expect(seen?.headers['content-type']).toMatch(/^application\/fhir\+json/);
    await client.close();
    await server.close();
  });

  it('reports a non-JSON 2xx body as malformed', async () => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
    });
    const { client } = harness(`${server.url}/fhir`, {}, { retry: { maxAttempts: 2 } });
    await expect(client.read('Patient', 'p1')).rejects.toThrow(MalformedResponseError);
    expect(server.requests).toHaveLength(2);
    await client.close();
    await server.close();
  });
});
