/**
 * One large patient of the sandbox (`Patient/big` and `count` lab Observations) and two clients that
 * page a search of it to its end: the shape `npm run bench:sandbox` times and
 * `test/sandbox/large-patient-paging.part.ts` checks.
 * @packageDocumentation
 */
import { Agent, request as httpRequest } from 'node:http';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';

/** The patient's resources: the Patient, then `count` Observations (`obs-0` …), one a minute from 2020-01-01. */
export function largePatient(count: number): Resource[] {
  const resources: Resource[] = [{ resourceType: 'Patient', id: 'big' }];
  for (let i = 0; i < count; i++) resources.push(observation(i));
  return resources;
}

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

/** The search of the patient's Observations at `_count=pageSize`. */
export function largePatientSearchUrl(baseUrl: string, pageSize: number): string {
  return `${baseUrl}/Observation?patient=big&_count=${pageSize}`;
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
  for (let index = buffer.indexOf(needle); index >= 0; index = buffer.indexOf(needle, index + needle.length)) count++;
  return count;
}

/**
 * Pages with `node:http` to the end, reading each body whole and taking its match entries and next
 * link without parsing it (what the server itself sustains).
 */
export async function pageThroughRaw(firstUrl: string, agent: Agent): Promise<{ resources: number; pages: number }> {
  let url: string | undefined = firstUrl;
  let resources = 0;
  let pages = 0;
  while (url) {
    const body = await get(url, agent);
    resources += countOccurrences(body, '"search":{"mode":"match"}');
    url = /"relation":"next","url":"([^"]+)"/.exec(body.subarray(0, 2048).toString('utf8'))?.[1];
    pages++;
  }
  return { resources, pages };
}

/** Pages with `fetch` + `JSON.parse` to the end (a minimal real client): the ids of the entries, in order. */
export async function pageThroughParsed(firstUrl: string): Promise<{ ids: string[]; pages: number }> {
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
