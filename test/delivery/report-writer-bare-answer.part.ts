import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Bundle, FhirResource } from 'fhir/r4';
import type { ReportFacts } from '../../src/delivery/report-resources';
import { writeReport } from '../../src/delivery/report-writer';
import { makeClient } from '../fhir/support/client';
import { sendJson, type TestServer } from '../fhir/support/http-server';
import type { TestRedis } from '../fhir/support/redis';
import { startClientBench } from '../support/client-bench';
import { startForFile } from '../support/for-file';
import { SAMPLE_REPORT_FACTS, SEQUENTIAL_WRITE_PLAN } from '../support/report-facts';

/**
 * One by one, a recipient may answer the report's conditional create without naming its id: a bare
 * `200 OK` for a match already there, or `201` with neither body nor `Location`
 * (https://hl7.org/fhir/R4/http.html#ccreate). The note and the message that follow point at the
 * report, and a `urn:uuid:` reference resolves only inside a transaction Bundle
 * (https://hl7.org/fhir/R4/bundle.html#references): so the report is found by identifier first and
 * they point at `DiagnosticReport/<id>`; not found yet, nothing more is sent in that attempt.
 */
let env: TestRedis;
let redis: Redis;
let server: TestServer;
const facts: ReportFacts = SAMPLE_REPORT_FACTS;
startForFile(() => startClientBench('writer-bare-answer'), (bench) => ({ env, redis, server } = bench));

/**
 * A recipient that stores what it is sent (search by identifier answers it, filtered), but answers the
 * report's create with `status` and no body nor `Location`; `findable: false`: its searches do not
 * see the report yet (an index behind its writes).
 */
function recipient(status: 200 | 201, findable: boolean): { handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void; sent: FhirResource[] } {
  const stored: FhirResource[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const type = url.pathname.split('/').filter(Boolean).pop() ?? '';
    if (req.method === 'GET') {
      const wanted = url.searchParams.get('identifier') ?? '';
      const hits = stored.filter((r) => r.resourceType === type && (findable || type !== 'DiagnosticReport'))
        .filter((r) => ((r as { identifier?: { system?: string; value?: string }[] }).identifier ?? []).some((i) => `${i.system ?? ''}|${i.value ?? ''}` === wanted));
      const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: hits.length, entry: hits.map((resource) => ({ resource })) };
      return sendJson(res, 200, bundle);
    }
    const resource = { ...(JSON.parse(body.toString()) as FhirResource), id: `${type.toLowerCase()}-${stored.length + 1}` };
    stored.push(resource);
    if (type === 'DiagnosticReport') {
      res.writeHead(status);
      res.end();
      return;
    }
    sendJson(res, 201, resource, { location: `${server.url}/${type}/${resource.id}/_history/1` });
  };
  return { handler, sent: stored };
}

async function write(status: 200 | 201, findable: boolean) {
  const r = recipient(status, findable);
  server.handle(r.handler);
  const { client } = makeClient(redis, env.prefix, server.url);
  try {
    const written = await writeReport(client, SEQUENTIAL_WRITE_PLAN, facts, {}, { recipient: { display: 'Dr. B' } }, async () => undefined).catch((err: unknown) => err as Error);
    return { written, sent: r.sent };
  } finally {
    await client.close();
  }
}

const reportRefOf = (r: FhirResource | undefined): string | undefined =>
  r?.resourceType === 'DocumentReference' ? r.context?.related?.[0]?.reference : r?.resourceType === 'Communication' ? r.payload?.find((p) => p.contentReference)?.contentReference?.reference ?? r.about?.[0]?.reference : undefined;

it.each([200, 201] as const)('the report created with a bare %i: found by identifier, the note and message point at it by its id', async (status) => {
  const { written, sent } = await write(status, true);
  expect(written).toMatchObject({ ids: { DiagnosticReport: 'diagnosticreport-1' }, mode: 'sequential' });
  const after = sent.filter((r) => r.resourceType !== 'DiagnosticReport');
  expect(after.map((r) => r.resourceType)).toEqual(['DocumentReference', 'Communication']);
  for (const r of after) {
    expect(JSON.stringify(r)).not.toContain('urn:uuid:');
    expect(reportRefOf(r)).toBe('DiagnosticReport/diagnosticreport-1');
  }
});

it('the report not found after a bare answer: the attempt stops before the note and message (the next one looks first)', async () => {
  const { written, sent } = await write(201, false);
  expect(written).toBeInstanceOf(Error);
  expect((written as Error).message).toMatch(/without naming its id.*next attempt/);
  expect(sent.map((r) => r.resourceType)).toEqual(['DiagnosticReport']);
});
