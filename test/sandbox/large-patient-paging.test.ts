/**
 * A large patient paged at `_count=500` to its end returns every resource once: through a raw
 * `node:http` client that only follows the next link (the server's search snapshot, twice: the first
 * search builds it, the second slices it) and through `fetch` + `JSON.parse`. The throughput of the
 * same passes, on 50,000 resources, is `npm run bench:sandbox` (src/sandbox/README.md, Throughput).
 */
import { Agent, request as httpRequest } from 'node:http';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';

const RESOURCES = 2_000;
const PAGE = 500;
let server: SandboxServer;

beforeAll(async () => {
  server = await startSandboxServer({ name: 'large-patient', auth: 'none' });
  const resources: Resource[] = [{ resourceType: 'Patient', id: 'big' }];
  for (let i = 0; i < RESOURCES; i++) {
    resources.push(observation(i));
  }
  await server.load(resources);
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('pages a large patient at _count=500 to its end, every resource once', async () => {
  const agent = new Agent({ keepAlive: true });
  const first = `${server.baseUrl}/Observation?patient=big&_count=${PAGE}`;
  try {
    const cold = await pageRaw(first, agent);
    const warm = await pageRaw(first, agent);
    expect(cold).toEqual({ resources: RESOURCES, pages: RESOURCES / PAGE });
    expect(warm).toEqual(cold);
  } finally {
    agent.destroy();
  }
  const parsed = await pageParsed(first);
  expect(parsed.pages).toBe(RESOURCES / PAGE);
  expect(parsed.ids.length).toBe(RESOURCES);
  expect(new Set(parsed.ids).size).toBe(RESOURCES);
});

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

async function pageParsed(firstUrl: string): Promise<{ ids: string[]; pages: number }> {
  let url: string | undefined = firstUrl;
  const ids: string[] = [];
  let pages = 0;
  while (url) {
    const bundle = JSON.parse(await (await fetch(url)).text()) as Bundle;
    for (const e of bundle.entry ?? []) ids.push(e.resource?.id ?? '');
    url = bundle.link?.find((link) => link.relation === 'next')?.url;
    pages++;
  }
  return { ids, pages };
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
