import type { DocumentReference } from 'fhir/r4';
import type { Redis } from 'ioredis';
import { supersedeDocument } from '../../src/delivery/supersede-document';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { makeClient } from '../fhir/support/client';
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
