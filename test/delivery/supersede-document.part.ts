import type { DocumentReference } from 'fhir/r4';
import type { Redis } from 'ioredis';
import { NO_VERSION_REASON, supersedeDocument } from '../../src/delivery/supersede-document';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { makeClient } from '../fhir/support/client';
import { outcome, sendJson, startTestServer, type TestServer } from '../fhir/support/http-server';
import { testRedis, type TestRedis } from '../fhir/support/redis';
import { eventually } from '../support/service';

/**
 * The replaced note of an amended report is marked `superseded` at the recipient, on the version read
 * (If-Match): a change made there meanwhile is read again and kept, never overwritten; a reference
 * already superseded is left alone (a delivery run twice writes once); refusals are outcomes.
 */
let ehr: SandboxServer;
let env: TestRedis;
let redis: Redis;

beforeAll(async () => {
  env = testRedis('supersede');
  redis = env.connect();
  ehr = await startSandboxServer({ name: 'referring-ehr', auth: 'none' });
});

afterAll(async () => {
  await ehr.stop();
  await env.cleanup();
});

const note = (description: string): DocumentReference => ({
  resourceType: 'DocumentReference',
  status: 'current',
  description,
  content: [{ attachment: { contentType: 'application/pdf', url: 'https://example.org/report-v1.pdf' } }],
});

async function stored(description: string): Promise<string> {
  const { ids } = await ehr.load([note(description)]);
  const id = ids.DocumentReference?.[0];
  if (!id) throw new Error('not loaded');
  return id;
}

it('marks the note superseded, and then leaves it alone', async () => {
  const { client } = makeClient(redis, env.prefix, ehr.baseUrl);
  const id = await stored('Second opinion report v1');
  expect(await supersedeDocument(client, id)).toEqual({ id, state: 'superseded' });
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'superseded', description: 'Second opinion report v1' });
  const puts = ehr.requestCount(`PUT /DocumentReference/${id}`);
  expect(await supersedeDocument(client, id)).toEqual({ id, state: 'already-superseded' });
  expect(ehr.requestCount(`PUT /DocumentReference/${id}`)).toBe(puts);
});

it('reads again when the note changed at the recipient after it was read, keeping that change', async () => {
  const { client } = makeClient(redis, env.prefix, ehr.baseUrl);
  const id = await stored('Second opinion report v1');
  // Our update is held on its way in; meanwhile someone at the EHR edits the note.
  const rule = ehr.faults.add({ match: `PUT /DocumentReference/${id}`, action: { kind: 'latency', ms: 2_000 }, nth: 1 });
  try {
    const superseding = supersedeDocument(client, id);
    await eventually(async () => ehr.requestCount(`PUT /DocumentReference/${id}`), (n) => n >= 1, 10_000);
    const edited = { ...ehr.read('DocumentReference', id), description: 'Edited at the EHR' };
    const res = await fetch(`${ehr.baseUrl}/DocumentReference/${id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(edited) });
    expect(res.status).toBe(200);
    expect(await superseding).toEqual({ id, state: 'superseded' });
  } finally {
    ehr.faults.remove(rule);
  }
  // The held update met a newer version (412) and was not applied; the second read kept the edit.
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'superseded', description: 'Edited at the EHR' });
  expect(ehr.requestCount(`PUT /DocumentReference/${id}`)).toBe(3);
});

it('reports a note gone or marked in error, without failing', async () => {
  const { client } = makeClient(redis, env.prefix, ehr.baseUrl);
  expect(await supersedeDocument(client, 'no-such-note')).toEqual({ id: 'no-such-note', state: 'left-current', reason: 'it is no longer at the recipient (HTTP 404)' });
  const { ids } = await ehr.load([{ ...note('wrong'), status: 'entered-in-error' }]);
  const id = ids.DocumentReference?.[0] ?? '';
  expect(await supersedeDocument(client, id)).toEqual({ id, state: 'left-current', reason: 'it is marked entered-in-error at the recipient' });
});

/**
 * A HAPI FHIR-style recipient in front of the sandbox: every request is passed on to it, and an update
 * refused there with 412 for a stale `If-Match` is answered 409 Conflict instead, as HAPI FHIR does
 * (`ResourceVersionConflictException`; R4 allows either: https://hl7.org/fhir/R4/http.html#update).
 * `beforeUpdate` runs before each PUT is passed on (someone editing the note at the EHR meanwhile).
 */
async function hapiStyleRecipient(beforeUpdate: (n: number) => Promise<void>): Promise<TestServer> {
  const upstream = new URL(ehr.baseUrl);
  let updates = 0;
  return startTestServer(async (req, res, body) => {
    const isUpdate = req.method === 'PUT';
    if (isUpdate) await beforeUpdate(++updates);
    const headers: Record<string, string> = {};
    for (const name of ['accept', 'content-type', 'if-match', 'prefer']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(`${upstream.origin}${req.url ?? ''}`, { method: req.method, headers, ...(body.length > 0 ? { body } : {}) });
    if (isUpdate && answer.status === 412) {
      sendJson(res, 409, outcome('conflict'));
      return;
    }
    const payload = Buffer.from(await answer.arrayBuffer());
    const etag = answer.headers.get('etag');
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/fhir+json', 'content-length': payload.length, ...(etag ? { etag } : {}) });
    res.end(payload);
  });
}

/** Edits the note directly at the sandbox (no If-Match), as a clinician at the EHR would. */
async function editAtEhr(id: string, description: string): Promise<void> {
  const edited = { ...ehr.read('DocumentReference', id), description };
  const res = await fetch(`${ehr.baseUrl}/DocumentReference/${id}`, { method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(edited) });
  expect(res.status).toBe(200);
}

it('reads again when the recipient answers a stale If-Match with 409 Conflict (as HAPI FHIR does), keeping the change made there', async () => {
  const id = await stored('Second opinion report v1');
  // The note is edited at the EHR after our read and before our update reaches it.
  const front = await hapiStyleRecipient(async (n) => {
    if (n === 1) await editAtEhr(id, 'Edited at the EHR');
  });
  try {
    const { client } = makeClient(redis, env.prefix, `${front.url}/fhir`);
    expect(await supersedeDocument(client, id)).toEqual({ id, state: 'superseded' });
  } finally {
    await front.close();
  }
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'superseded', description: 'Edited at the EHR' });
  // Read, update refused (409), read again, update on the new version.
  expect(front.requests.map((r) => r.method)).toEqual(['GET', 'PUT', 'GET', 'PUT']);
});

it('reports a 409 that is no version conflict (the note unchanged at the recipient) as a refusal, without reading again and again', async () => {
  const id = await stored('Second opinion report v1');
  // Every update is refused with 409 although nobody changed the note: a business rule of that EHR.
  const front = await startTestServer(async (req, res) => {
    if (req.method === 'PUT') {
      sendJson(res, 409, outcome('business-rule'));
      return;
    }
    const answer = await fetch(`${new URL(ehr.baseUrl).origin}${req.url ?? ''}`, { headers: { accept: 'application/fhir+json' } });
    sendJson(res, answer.status, await answer.json());
  });
  try {
    const { client } = makeClient(redis, env.prefix, `${front.url}/fhir`);
    expect(await supersedeDocument(client, id)).toEqual({ id, state: 'left-current', reason: 'the recipient refused to update it (HTTP 409)' });
  } finally {
    await front.close();
  }
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'current' });
  expect(front.requests.map((r) => r.method)).toEqual(['GET', 'PUT', 'GET']);
});

/** A recipient in front of the sandbox that answers reads without `meta.versionId`, with the version in the `ETag` header only (`etag: false`: without it too). */
async function versionInEtagOnly(etag: boolean): Promise<TestServer> {
  return startTestServer(async (req, res, body) => {
    const target = `${new URL(ehr.baseUrl).origin}${req.url ?? ''}`;
    if (req.method === 'PUT') {
      const answer = await fetch(target, { method: 'PUT', headers: { 'content-type': 'application/fhir+json', ...(req.headers['if-match'] ? { 'if-match': String(req.headers['if-match']) } : {}) }, body });
      sendJson(res, answer.status, await answer.json());
      return;
    }
    const answer = await fetch(target, { headers: { accept: 'application/fhir+json' } });
    const resource = (await answer.json()) as DocumentReference;
    const versionId = resource.meta?.versionId;
    const { meta: _dropped, ...withoutMeta } = resource;
    sendJson(res, answer.status, withoutMeta, etag && versionId ? { etag: `W/"${versionId}"` } : {});
  });
}

it('names the version of the ETag in If-Match when the note read has no meta.versionId', async () => {
  const id = await stored('Second opinion report v1');
  const versionId = (ehr.read('DocumentReference', id) as DocumentReference).meta?.versionId;
  const front = await versionInEtagOnly(true);
  try {
    const { client } = makeClient(redis, env.prefix, `${front.url}/fhir`);
    expect(await supersedeDocument(client, id)).toEqual({ id, state: 'superseded' });
  } finally {
    await front.close();
  }
  expect(front.requests.find((r) => r.method === 'PUT')?.headers['if-match']).toBe(`W/"${versionId ?? ''}"`);
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'superseded' });
});

it('does not update a note whose version the recipient does not tell (no meta.versionId, no ETag): left current, said why', async () => {
  const id = await stored('Second opinion report v1');
  const front = await versionInEtagOnly(false);
  try {
    const { client } = makeClient(redis, env.prefix, `${front.url}/fhir`);
    expect(await supersedeDocument(client, id)).toEqual({ id, state: 'left-current', reason: NO_VERSION_REASON });
  } finally {
    await front.close();
  }
  expect(front.requests.map((r) => r.method)).toEqual(['GET']);
  expect(ehr.read('DocumentReference', id)).toMatchObject({ status: 'current' });
});
