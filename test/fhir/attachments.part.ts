import { createHash, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import type { Redis } from 'ioredis';
import { AttachmentTooLargeError, MalformedResponseError, OffOriginUrlError } from '../../src/fhir/errors';
import { makeClient } from './support/client';
import { sendJson, startTestServer, type TestServer } from './support/http-server';
import { testRedis, type TestRedis } from './support/redis';
import { Collect } from '../support/collect-stream';

const PDF = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(300_000)]);
/** A document that is JSON (a device export, say), not a FHIR resource. */
const JSON_DOCUMENT = Buffer.from('{"device":"growth-monitor","format":"Binary","readings":[{"cm":92.5},{"cm":93.1}]}\n');
/** The PDF as a FHIR Binary resource (https://hl7.org/fhir/R4/binary.html#rest), as sendJson sends it (with its Content-Length). */
const BINARY_JSON_RESOURCE = { resourceType: 'Binary', id: 'json', contentType: 'application/pdf', data: PDF.toString('base64') };
const BINARY_JSON = Buffer.from(JSON.stringify(BINARY_JSON_RESOURCE));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer) => createHash('sha1').update(b);

let env: TestRedis;
let redis: Redis;
let server: TestServer;
let other: TestServer;


beforeAll(async () => {
  env = testRedis('binary');
  redis = env.connect();
  other = await startTestServer();
  server = await startTestServer((req, res) => {
    switch (req.url) {
      case '/fhir/Binary/pdf':
        res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': PDF.length });
        return void res.end(PDF);
      case '/fhir/Binary/chunked': {
        // No Content-Length: the cap has to be enforced while streaming.
        res.writeHead(200, { 'content-type': 'application/pdf' });
        for (let i = 0; i < PDF.length; i += 16_384) res.write(PDF.subarray(i, i + 16_384));
        return void res.end();
      }
      case '/fhir/Binary/gz': {
        const gz = zlib.gzipSync(PDF);
        res.writeHead(200, { 'content-type': 'application/pdf', 'content-encoding': 'gzip', 'content-length': gz.length });
        return void res.end(gz);
      }
      case '/fhir/Binary/json':
        return sendJson(res, 200, BINARY_JSON_RESOURCE);
      case '/fhir/Binary/json-declared-huge': {
        // Declares more than a Binary resource of the cap could take, and never sends it.
        res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': 10_000_000 });
        return void res.write('{"resourceType":"Binary"');
      }
      case '/fhir/Binary/json-document':
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': JSON_DOCUMENT.length });
        return void res.end(JSON_DOCUMENT);
      case '/fhir/Binary/cut': {
        // A Binary resource whose body ends half-way (no Content-Length: the client cannot tell from the framing).
        const whole = Buffer.from(JSON.stringify({ resourceType: 'Binary', id: 'cut', contentType: 'application/pdf', data: PDF.toString('base64') }));
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        return void res.end(whole.subarray(0, whole.length >> 1));
      }
      case '/fhir/Binary/no-data':
        return sendJson(res, 200, { resourceType: 'Binary', id: 'no-data', contentType: 'application/pdf' });
      case '/fhir/Binary/moved':
        return void res.writeHead(302, { location: `${other.url}/bucket/file.pdf?sig=secret` }).end();
      default:
        return void res.writeHead(404).end();
    }
  });
});
afterAll(async () => {
  await Promise.all([server.close(), other.close()]);
  await env.cleanup();
});

const client = () => makeClient(redis, env.prefix, `${server.url}/fhir`).client;

it('streams an attachment to the sink with size, SHA-256 and SHA-1', async () => {
  const c = client();
  const sink = new Collect();
  const result = await c.fetchBinaryTo('Binary/pdf', sink, { maxBytes: 1_000_000, accept: 'application/pdf' });
  expect(result).toEqual({
    contentType: 'application/pdf',
    size: PDF.length,
    sha256: sha256(PDF),
    sha1: sha1(PDF).digest('hex'),
    sha1Base64: sha1(PDF).digest('base64'),
  });
  expect(sink.data.equals(PDF)).toBe(true);
  expect(sink.writableFinished).toBe(true);
  expect(server.requests.at(-1)?.headers.accept).toBe('application/pdf');
  await c.close();
});

it('refuses an attachment whose Content-Length is over the cap, before reading it', async () => {
  const c = client();
  const sink = new Collect();
  const err = await c.fetchBinaryTo(`${server.url}/fhir/Binary/pdf`, sink, { maxBytes: 100_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AttachmentTooLargeError);
  expect(err).toMatchObject({ maxBytes: 100_000, observedBytes: PDF.length, declared: true, permanent: true });
  expect((err as Error).message).toBe(`attachment declares ${PDF.length} bytes, over the 100000-byte limit`);
  expect(sink.data.length).toBe(0);
  expect(sink.destroyed).toBe(true);
  await c.close();
});

it('stops a chunked attachment as soon as it crosses the cap', async () => {
  const c = client();
  const sink = new Collect();
  const err = await c.fetchBinaryTo('Binary/chunked', sink, { maxBytes: 50_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AttachmentTooLargeError);
  expect(err).toMatchObject({ declared: false, maxBytes: 50_000 });
  expect(sink.data.length).toBeLessThanOrEqual(50_000);
  expect(sink.destroyed).toBe(true);
  await c.close();
});

it('decodes a gzip-encoded attachment and hashes the decoded bytes', async () => {
  const c = client();
  const { data, size, sha256: hash } = await c.fetchBinary('Binary/gz', { maxBytes: 1_000_000 });
  expect(data.equals(PDF)).toBe(true);
  expect(size).toBe(PDF.length);
  expect(hash).toBe(sha256(PDF));
  await c.close();
});

it('unwraps a Binary resource returned as FHIR JSON', async () => {
  const c = client();
  const result = await c.fetchBinary('Binary/json', { maxBytes: 1_000_000 });
  expect(result.contentType).toBe('application/pdf');
  expect(result.data.equals(PDF)).toBe(true);
  expect(result.sha256).toBe(sha256(PDF));
  await expect(c.fetchBinary('Binary/json', { maxBytes: 1000 })).rejects.toThrow(AttachmentTooLargeError);
  await c.close();
});

it('takes a Binary resource whose JSON is over the cap but whose content is not: the cap is of the decoded attachment', async () => {
  const c = client();
  // The JSON (base64, 4/3 the PDF) declares a Content-Length over maxBytes; the PDF itself is exactly at it.
  expect(BINARY_JSON.length).toBeGreaterThan(PDF.length);
  const result = await c.fetchBinary('Binary/json', { maxBytes: PDF.length });
  expect(result.data.equals(PDF)).toBe(true);
  expect(result).toMatchObject({ contentType: 'application/pdf', size: PDF.length, sha256: sha256(PDF) });
  await expect(c.fetchBinary('Binary/json', { maxBytes: PDF.length - 1 })).rejects.toMatchObject({
    name: 'AttachmentTooLargeError',
    declared: false,
    observedBytes: PDF.length,
  });
  await c.close();
});

it('refuses, before reading it, a JSON attachment declaring more than a Binary resource of the cap can take', async () => {
  const c = client();
  const sink = new Collect();
  const err = await c.fetchBinaryTo('Binary/json-declared-huge', sink, { maxBytes: 1_000_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AttachmentTooLargeError);
  expect(err).toMatchObject({ maxBytes: 1_000_000, observedBytes: 10_000_000, declared: true, permanent: true });
  expect(sink.data.length).toBe(0);
  expect(sink.destroyed).toBe(true);
  await c.close();
});

it('stores a JSON document that is not a Binary resource exactly as received', async () => {
  const c = client();
  const result = await c.fetchBinary('Binary/json-document', { maxBytes: 1_000_000, accept: 'application/json' });
  expect(result.data.equals(JSON_DOCUMENT)).toBe(true);
  expect(result).toMatchObject({ contentType: 'application/json; charset=utf-8', size: JSON_DOCUMENT.length, sha256: sha256(JSON_DOCUMENT) });
  await c.close();
});

it('retries, never stores, a JSON attachment cut short (it does not parse): not a document to keep as received', async () => {
  const c = client();
  const sink = new Collect();
  const err = await c.fetchBinaryTo('Binary/cut', sink, { maxBytes: 1_000_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MalformedResponseError);
  expect(err).toMatchObject({ permanent: false });
  expect(sink.data.length).toBe(0);
  expect(sink.destroyed).toBe(true);
  await c.close();
});

it('fails, for good and saying why, a Binary resource without data instead of storing an empty file', async () => {
  const c = client();
  const sink = new Collect();
  const err = await c.fetchBinaryTo('Binary/no-data', sink, { maxBytes: 1_000_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MalformedResponseError);
  expect(err).toMatchObject({ permanent: true, message: 'FHIR response malformed: the attachment is a Binary resource without data: no content to store' });
  expect(sink.data.length).toBe(0);
  expect(sink.destroyed).toBe(true);
  expect(await c.circuitState()).toMatchObject({ state: 'closed', failures: 0 });
  await c.close();
});

it('refuses attachment URLs and redirects off the endpoint origin', async () => {
  const c = client();
  await expect(c.fetchBinary(`${other.url}/fhir/Binary/pdf`, { maxBytes: 1_000_000 })).rejects.toThrow(OffOriginUrlError);
  await expect(c.fetchBinary('Binary/moved', { maxBytes: 1_000_000 })).rejects.toMatchObject({ name: 'OffOriginUrlError', context: 'redirect' });
  expect(other.requests).toHaveLength(0);
  await c.close();
});
