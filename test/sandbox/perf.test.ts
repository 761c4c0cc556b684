/**
 * Serving throughput for a large patient at _count=500 (10,000 resources, 20 pages; the figures in
 * src/sandbox/README.md were taken with `SANDBOX_PERF_RESOURCES=50000`, 100 pages, the shape of the
 * pull benchmark). Prints pages/s and resources/s for:
 * - serving: a raw HTTP client that only finds the next link (what the server itself sustains,
 *   with client and server sharing this one thread);
 * - end to end: fetch + JSON.parse of every page (a minimal real client).
 * The search runs once; every page after the first is sliced from its snapshot.
 */
import { Agent, request as httpRequest } from 'node:http';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';

const RESOURCES = Number(process.env['SANDBOX_PERF_RESOURCES'] ?? 10_000);
const PAGE = 500;
let server: SandboxServer;

beforeAll(async () => {
  server = await startSandboxServer({ name: 'perf', auth: 'none' });
  const resources: Resource[] = [{ resourceType: 'Patient', id: 'big' }];
  for (let i = 0; i < RESOURCES; i++) {
    resources.push(observation(i));
  }
  const started = performance.now();
  await server.load(resources);
  console.log(`perf: loaded ${RESOURCES + 1} resources in ${((performance.now() - started) / 1000).toFixed(2)} s`);
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('pages a large patient at _count=500 to its end, every resource once (prints the throughput)', async () => {
  const agent = new Agent({ keepAlive: true });
  const first = `${server.baseUrl}/Observation?patient=big&_count=${PAGE}`;
  const cold = await timed(() => pageRaw(first, agent));
  const warm = await timed(() => pageRaw(first, agent));
  const parsed = await timed(() => pageParsed(first));
  agent.destroy();
  const report = (label: string, run: { resources: number; pages: number; seconds: number }): number => {
    const perSecond = run.resources / run.seconds;
    console.log(`perf: ${label}: ${run.pages} pages, ${run.resources} resources in ${run.seconds.toFixed(2)} s = ${(run.pages / run.seconds).toFixed(0)} pages/s, ${perSecond.toFixed(0)} resources/s`);
    return perSecond;
  };
  report('serving, first search (index build + snapshot)', cold);
  report('serving, warm', warm);
  report('end to end (fetch + JSON.parse)', parsed);
  expect(cold.resources).toBe(RESOURCES);
  expect(parsed.resources).toBe(RESOURCES);
  expect(cold.pages).toBe(RESOURCES / PAGE);
  expect(warm.resources).toBe(RESOURCES);
  // No throughput assertion: timing on a shared 2-core machine is not a test (it would be flaky).
  // The printed figures are the measurement; `npm run bench:pull` is the benchmark.
}, 60_000);

function observation(i: number): Observation {
  return {
    resourceType: 'Observation',
    id: `obs-${i}`,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2339-0', display: 'Glucose [Mass/volume] in Blood' }], text: 'Glucose' },
    subject: { reference: 'Patient/big' },
    encounter: { reference: `Encounter/e${i % 500}` },
    effectiveDateTime: new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(),
    issued: '2020-01-01T00:00:00.000Z',
    valueQuantity: { value: 80 + (i % 40), unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
  };
}

async function timed(run: () => Promise<{ resources: number; pages: number }>): Promise<{ resources: number; pages: number; seconds: number }> {
  const started = performance.now();
  const result = await run();
  return { ...result, seconds: (performance.now() - started) / 1000 };
}

/** Pages with node:http, reading each body whole and taking `total`, the entry count and the next link without parsing. */
async function pageRaw(firstUrl: string, agent: Agent): Promise<{ resources: number; pages: number }> {
  let url: string | undefined = firstUrl;
  let resources = 0;
  let pages = 0;
  while (url) {
    const body = await get(url, agent);
    const head = body.subarray(0, 2048).toString('utf8');
    resources += countOccurrences(body, '"search":{"mode":"match"}');
    url = /"relation":"next","url":"([^"]+)"/.exec(head)?.[1];
    pages++;
  }
  return { resources, pages };
}

async function pageParsed(firstUrl: string): Promise<{ resources: number; pages: number }> {
  let url: string | undefined = firstUrl;
  let resources = 0;
  let pages = 0;
  while (url) {
    const bundle = JSON.parse(await (await fetch(url)).text()) as Bundle;
    resources += bundle.entry?.length ?? 0;
    url = bundle.link?.find((link) => link.relation === 'next')?.url;
    pages++;
  }
  return { resources, pages };
}

function get(url: string, agent: Agent): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

function countOccurrences(buffer: Buffer, needle: string): number {
  let count = 0;
  let index = buffer.indexOf(needle);
  while (index >= 0) {
    count++;
    index = buffer.indexOf(needle, index + needle.length);
  }
  return count;
}
