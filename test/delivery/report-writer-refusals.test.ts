import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { FhirResource } from 'fhir/r4';
import type { ReportFacts } from '../../src/delivery/report-resources';
import { planWrite, writeReport, type WritePlan } from '../../src/delivery/report-writer';
import type { RemoteIds } from '../../src/delivery/delivery-repository';
import { isPermanentFhirError } from '../../src/fhir';
import { makeClient } from '../fhir/support/client';
import { outcome, sendJson, startTestServer, type TestServer } from '../fhir/support/http-server';
import { testRedis, type TestRedis } from '../fhir/support/redis';
import { SAMPLE_REPORT_FACTS } from '../support/report-facts';

/**
 * One by one (a recipient without `transaction`), the report is written first: a DocumentReference the
 * recipient then refuses for good (a 4xx) is left out and said so, and the Communication still goes, so
 * the delivery ends instead of failing, and failing again on every retry, with the report in the chart.
 * Anything else the recipient refuses, and any passing failure, is still thrown.
 */
let env: TestRedis;
let redis: Redis;
let server: TestServer;

const facts: ReportFacts = SAMPLE_REPORT_FACTS;

const all = { interactions: ['create', 'update', 'read', 'search-type'], searchParams: [], operations: [], conditionalCreate: true };
/** One by one: no `transaction` offered. */
const sequential: WritePlan = planWrite({ resources: { DiagnosticReport: all, DocumentReference: all, Communication: all }, patientEverything: false, systemInteractions: [] });

/**
 * A recipient holding nothing of ours yet that creates what it is sent, but answers the create of
 * `refused` with `status`.
 */
function recipient(refused: string, status: number): (req: IncomingMessage, res: ServerResponse, body: Buffer) => void {
  let next = 0;
  return (req, res, body) => {
    const type = new URL(req.url ?? '/', 'http://x').pathname.split('/').filter(Boolean).pop() ?? '';
    if (req.method === 'GET') return sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', entry: [] });
    if (type === refused) return sendJson(res, status, outcome(status === 403 ? 'forbidden' : status >= 500 ? 'transient' : 'invalid'));
    next += 1;
    const resource = { ...(JSON.parse(body.toString()) as FhirResource), id: `${type.toLowerCase()}-${next}` };
    sendJson(res, 201, resource, { location: `${server.url}/${type}/${resource.id}/_history/1` });
  };
}

beforeAll(async () => {
  env = testRedis('writer-refusals');
  redis = env.connect();
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
  await env.cleanup();
});

async function write(refused: string, status: number): Promise<{ outcome: Awaited<ReturnType<typeof writeReport>>; progress: RemoteIds[]; posts: string[] }> {
  server.handle(recipient(refused, status));
  const before = server.requests.length;
  const { client } = makeClient(redis, env.prefix, server.url);
  const progress: RemoteIds[] = [];
  try {
    const written = await writeReport(client, sequential, facts, {}, { recipient: { display: 'Dr. B' } }, async (ids) => {
      progress.push({ ...ids });
    });
    return { outcome: written, progress, posts: server.requests.slice(before).filter((r) => r.method === 'POST').map((r) => r.url) };
  } finally {
    await client.close();
  }
}

it.each([403, 400, 422])('leaves out a DocumentReference refused with %i, says why, and still sends the Communication', async (status) => {
  const { outcome: written, progress, posts } = await write('DocumentReference', status);
  expect(written).toEqual({
    ids: { DiagnosticReport: expect.any(String) as unknown, Communication: expect.any(String) as unknown },
    documentRefused: expect.stringMatching(new RegExp(`^the recipient refused it: FHIR server answered ${status}`)) as unknown,
  });
  // The report first, the note refused, then the message; what is in the chart on record as it goes.
  expect(posts).toEqual(['/DiagnosticReport', '/DocumentReference', '/Communication']);
  expect(progress.at(-1)).toEqual(written.ids);
});

it('still throws a DocumentReference create that fails for now (5xx): a retry may write it', async () => {
  const failing = write('DocumentReference', 500);
  const err = await failing.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(isPermanentFhirError(err)).toBe(false);
});

it.each(['DiagnosticReport', 'Communication'])('still throws a refusal of the %s', async (type) => {
  const err = await write(type, 403).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/answered 403/);
  expect(isPermanentFhirError(err)).toBe(true);
});
