import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { FhirResource } from 'fhir/r4';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM, type ReportFacts } from '../../src/delivery/report-resources';
import { writeReport, type WritePlan } from '../../src/delivery/report-writer';
import type { RemoteIds } from '../../src/delivery/delivery-repository';
import { isPermanentFhirError } from '../../src/fhir';
import { makeClient } from '../fhir/support/client';
import { outcome, sendJson, type TestServer } from '../fhir/support/http-server';
import type { TestRedis } from '../fhir/support/redis';
import { startClientBench } from '../support/client-bench';
import { startForFile } from '../support/for-file';
import { SAMPLE_REPORT_FACTS, SEQUENTIAL_WRITE_PLAN, TRANSACTION_WRITE_PLAN } from '../support/report-facts';

/**
 * One by one (a recipient without `transaction`), the report is written first: a DocumentReference or
 * a Communication the recipient then refuses for good (a 4xx) is left out and said so (the
 * Communication still goes without the note), so the delivery ends instead of failing, and failing
 * again on every retry, with the report in the chart. A refusal of the report itself, and any passing
 * failure, is still thrown.
 *
 * A transaction the recipient refuses for good (a 4xx answer: nothing of it was written,
 * https://hl7.org/fhir/R4/http.html#transaction) is followed by the same conditional creates one by
 * one, report first; a transaction that failed for now (5xx) or whose answer was lost is thrown, never
 * followed by creates (it may have been processed).
 */
let env: TestRedis;
let redis: Redis;
let server: TestServer;

const facts: ReportFacts = SAMPLE_REPORT_FACTS;

/** `transaction`: the `POST [base]` of the Bundle; `lost`: the request is taken and the connection dropped, unanswered. */
type Refused = 'DiagnosticReport' | 'DocumentReference' | 'Communication' | 'transaction';

/**
 * A recipient holding nothing of ours yet that creates what it is sent, but answers the create of
 * `refused` (one by one, or the transaction) with `status` (`'lost'`: no answer, the connection dropped).
 */
function recipient(refused: Refused, status: number | 'lost'): (req: IncomingMessage, res: ServerResponse, body: Buffer) => void {
  let next = 0;
  return (req, res, body) => {
    const type = new URL(req.url ?? '/', 'http://x').pathname.split('/').filter(Boolean).pop() ?? 'transaction';
    if (req.method === 'GET') return sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', entry: [] });
    if (type === refused && status === 'lost') return void res.destroy();
    if (type === refused) return sendJson(res, status as number, outcome(status === 403 ? 'forbidden' : (status as number) >= 500 ? 'transient' : 'invalid'));
    if (type === 'transaction') return sendJson(res, 500, outcome('exception'));
    next += 1;
    const resource = { ...(JSON.parse(body.toString()) as FhirResource), id: `${type.toLowerCase()}-${next}` };
    sendJson(res, 201, resource, { location: `${server.url}/${type}/${resource.id}/_history/1` });
  };
}

startForFile(() => startClientBench('writer-refusals'), (bench) => ({ env, redis, server } = bench));

async function write(
  refused: Refused,
  status: number | 'lost',
  plan: WritePlan = SEQUENTIAL_WRITE_PLAN,
): Promise<{ outcome: Awaited<ReturnType<typeof writeReport>>; progress: RemoteIds[]; posts: string[]; conditions: (string | undefined)[] }> {
  server.handle(recipient(refused, status));
  const before = server.requests.length;
  const { client } = makeClient(redis, env.prefix, server.url);
  const progress: RemoteIds[] = [];
  const sent = () => server.requests.slice(before).filter((r) => r.method === 'POST');
  try {
    const written = await writeReport(client, plan, facts, {}, { recipient: { display: 'Dr. B' } }, async (ids) => {
      progress.push({ ...ids });
    });
    return { outcome: written, progress, posts: sent().map((r) => r.url), conditions: sent().map((r) => r.headers['if-none-exist'] as string | undefined) };
  } finally {
    await client.close();
  }
}

/** The POSTs the recipient saw since `before`. */
const postsSince = (before: number): string[] => server.requests.slice(before).filter((r) => r.method === 'POST').map((r) => r.url);

it.each([403, 400, 422])('leaves out a DocumentReference refused with %i, says why, and still sends the Communication', async (status) => {
  const { outcome: written, progress, posts } = await write('DocumentReference', status);
  expect(written).toEqual({
    ids: { DiagnosticReport: expect.any(String) as unknown, Communication: expect.any(String) as unknown },
    mode: 'sequential',
    documentRefused: expect.stringMatching(new RegExp(`^the recipient refused it: FHIR server answered ${status}`)) as unknown,
  });
  // The report first, the note refused, then the message; what is in the chart on record as it goes.
  expect(posts).toEqual(['/DiagnosticReport', '/DocumentReference', '/Communication']);
  expect(progress.at(-1)).toEqual(written.ids);
});

// Changed deliberately: a refused Communication used to be thrown (the delivery failed for good with the
// report and note in the chart, and every retry failed the same way). It is now left out and said so,
// as a refused note is; the delivery runner tells the case managers (delivery.physician_not_told).
it.each([403, 422])('leaves out a Communication refused with %i and says why: the report and its note are in the chart', async (status) => {
  const { outcome: written, progress, posts } = await write('Communication', status);
  expect(written).toEqual({
    ids: { DiagnosticReport: expect.any(String) as unknown, DocumentReference: expect.any(String) as unknown },
    mode: 'sequential',
    communicationRefused: expect.stringMatching(new RegExp(`^the recipient refused it: FHIR server answered ${status}`)) as unknown,
  });
  expect(posts).toEqual(['/DiagnosticReport', '/DocumentReference', '/Communication']);
  expect(progress.at(-1)).toEqual(written.ids);
});

it('still throws a DocumentReference create that fails for now (5xx): a retry may write it', async () => {
  const failing = write('DocumentReference', 500);
  const err = await failing.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(isPermanentFhirError(err)).toBe(false);
});

it('still throws a refusal of the DiagnosticReport', async () => {
  const err = await write('DiagnosticReport', 403).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/answered 403/);
  expect(isPermanentFhirError(err)).toBe(true);
});

describe('a transaction', () => {
  it.each([422, 400, 403])('refused with %i is followed by the same conditional creates one by one, report first', async (status) => {
    const { outcome: written, progress, posts, conditions } = await write('transaction', status, TRANSACTION_WRITE_PLAN);
    expect(written).toEqual({
      ids: { DiagnosticReport: expect.any(String) as unknown, DocumentReference: expect.any(String) as unknown, Communication: expect.any(String) as unknown },
      mode: 'sequential',
      transactionRefused: expect.stringMatching(new RegExp(`^the recipient refused the transaction: FHIR server answered ${status}`)) as unknown,
    });
    expect(posts).toEqual(['/', '/DiagnosticReport', '/DocumentReference', '/Communication']);
    // Each create as conditional as the transaction's entries were.
    expect(conditions.slice(1)).toEqual([
      `identifier=${REPORT_IDENTIFIER_SYSTEM}|${facts.caseId}-v${facts.version}`,
      `identifier=${REPORT_IDENTIFIER_SYSTEM}|${facts.caseId}-v${facts.version}`,
      `identifier=${REPORT_COMMUNICATION_SYSTEM}|${facts.caseId}-v${facts.version}`,
    ]);
    expect(progress.at(-1)).toEqual(written.ids);
  });

  it('refused (422), then its Communication refused one by one too: delivered without it, both said', async () => {
    // The recipient refuses the message however it is sent: in the transaction, and on its own.
    const before = server.requests.length;
    const inner = recipient('Communication', 422);
    server.handle((req, res, body) => (req.method === 'POST' && (req.url ?? '') === '/' ? sendJson(res, 422, outcome('invalid')) : inner(req, res, body)));
    const { client } = makeClient(redis, env.prefix, server.url);
    try {
      const written = await writeReport(client, TRANSACTION_WRITE_PLAN, facts, {}, { recipient: { display: 'Dr. B' } }, async () => undefined);
      expect(written).toMatchObject({ mode: 'sequential', transactionRefused: expect.stringMatching(/answered 422/) as unknown, communicationRefused: expect.stringMatching(/answered 422/) as unknown });
      expect(Object.keys(written.ids).sort()).toEqual(['DiagnosticReport', 'DocumentReference']);
      expect(postsSince(before)).toEqual(['/', '/DiagnosticReport', '/DocumentReference', '/Communication']);
    } finally {
      await client.close();
    }
  });

  it.each([
    ['failing for now (500)', 500],
    ['whose answer was lost', 'lost'],
  ] as const)('%s is thrown, never followed by one-by-one creates', async (_what, status) => {
    const before = server.requests.length;
    const err = await write('transaction', status, TRANSACTION_WRITE_PLAN).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(isPermanentFhirError(err)).toBe(false);
    expect(postsSince(before).every((url) => url === '/')).toBe(true);
  });
});
