import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { FhirNetworkError } from '../../src/fhir/errors';
import { makeClient } from './support/client';
import { startTestServer, type TestServer } from './support/http-server';
import { testRedis, type TestRedis } from './support/redis';
import { Collect } from '../support/collect-stream';

/**
 * An attachment's body has no total deadline: a large document on a slow link arrives as long as
 * its bytes keep coming, and a body that stops arriving fails by the idle timeout. Neither counts
 * against the endpoint's circuit breaker (here opened by a single counted failure).
 */
/**
 * The request timeout. Long enough that the server (in this process) sending its next chunk late, when
 * a loaded machine holds up the event loop, is not taken for a stalled body (400 ms was not).
 */
const TIMEOUT_MS = 2000;
/** The slow document's gap between chunks: a twentieth of the timeout. */
const SLOW_GAP_MS = 100;
const CHUNK = 64 * 1024;
/** 3 MiB, sent 64 KiB every 100 ms: ~4.8 s in all, more than twice the request timeout. */
const DOCUMENT = randomBytes(48 * CHUNK);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let env: TestRedis;
let redis: Redis;
let server: TestServer;


/** Writes `body` chunk by chunk, one every `gapMs`, stopping (without ending) after `stopAfter` bytes. */
async function trickle(res: ServerResponse, body: Buffer, gapMs: number, stopAfter = body.length): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': body.length });
  res.flushHeaders();
  for (let at = 0; at < stopAfter; at += CHUNK) {
    if (res.destroyed) return;
    if (!res.write(body.subarray(at, Math.min(at + CHUNK, stopAfter)))) await once(res, 'drain');
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  if (stopAfter >= body.length) res.end();
}

beforeAll(async () => {
  env = testRedis('binary-timeouts');
  redis = env.connect();
  server = await startTestServer(async (req, res) => {
    if (req.url === '/fhir/Binary/slow') return trickle(res, DOCUMENT, SLOW_GAP_MS);
    // Sends a quarter of the document, then nothing more (the connection stays open).
    if (req.url === '/fhir/Binary/stalls') return trickle(res, DOCUMENT, 5, 12 * CHUNK);
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await server.close();
  await env.cleanup();
});

const client = () => makeClient(redis, env.prefix, `${server.url}/fhir`, { timeoutMs: TIMEOUT_MS }, { breaker: { failureThreshold: 1 } }).client;

it('fetches a document that streams for longer than the request timeout, as long as its bytes keep coming', async () => {
  const c = client();
  const sink = new Collect();
  const started = Date.now();
  const result = await c.fetchBinaryTo('Binary/slow', sink, { maxBytes: 100 * 1024 * 1024 });
  expect(Date.now() - started).toBeGreaterThan(2 * TIMEOUT_MS);
  expect(result).toMatchObject({ size: DOCUMENT.length, sha256: sha256(DOCUMENT) });
  expect(sink.data.equals(DOCUMENT)).toBe(true);
  expect(await c.circuitState()).toEqual({ state: 'closed', failures: 0 });
  await c.close();
});

it('fails a body that stops arriving by the idle timeout, without counting it against the circuit breaker', async () => {
  const c = client();
  const sink = new Collect();
  const started = Date.now();
  const err = await c.fetchBinaryTo('Binary/stalls', sink, { maxBytes: 100 * 1024 * 1024 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FhirNetworkError);
  expect(err).toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT', retryable: true, reason: 'no byte of the body received within the idle timeout' });
  expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS);
  expect(sink.destroyed).toBe(true);
  expect(await c.circuitState()).toEqual({ state: 'closed', failures: 0 });
  await c.close();
});
