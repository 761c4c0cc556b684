/**
 * Loads every Synthea (7) and Inferno (2) patient bundle, POSTed as a transaction with
 * fhir-kit-client, into a sandbox server with offset paging and one with HAPI-style token paging,
 * then pages through every resource type and through Patient/$everything with fhir-kit-client
 * (`search` + `nextPage`), expecting exactly what was loaded.
 */
import path from 'node:path';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { startSandboxServer, type PagingStyle, type SandboxServer } from '../../src/sandbox';
import { patientCompartment } from '../../src/sandbox/operations/patient-compartment';
import { fromKit, loadFhirKitClient, toKit, toKitPage, type FhirKitClient } from './support/fhir-kit-client';
import { countByType, publicDataFiles, readBundle } from './support/public-data';

const files = [...publicDataFiles('synthea-smart'), ...publicDataFiles('inferno-uscore')];
const PAGE_SIZE = 7;
const styles: PagingStyle[] = ['offset', 'token'];
const servers = new Map<PagingStyle, SandboxServer>();
const clients = new Map<PagingStyle, FhirKitClient>();

beforeAll(async () => {
  const { Client } = loadFhirKitClient();
  for (const paging of styles) {
    const server = await startSandboxServer({ name: `public-data-${paging}`, auth: 'none', paging });
    servers.set(paging, server);
    clients.set(paging, new Client({ baseUrl: server.baseUrl }));
  }
});

afterAll(async () => {
  await Promise.all([...servers.values()].map((server) => server.stop()));
});

test('there are 7 Synthea and 2 Inferno bundles', () => {
  expect(files).toHaveLength(9);
});

describe.each(files.map((file) => [path.basename(file), file]))('%s', (_name, file) => {
  const bundle = readBundle(file);
  const expectedCounts = countByType(bundle);
  const loaded = new Map<PagingStyle, Bundle>();

  beforeAll(async () => {
    for (const paging of styles) {
      servers.get(paging)?.reset();
      const response = fromKit<Bundle>(await clients.get(paging)?.transaction({ body: toKit(bundle) }));
      loaded.set(paging, response);
    }
  });

  test.each(styles)('transaction succeeds entry by entry (%s server)', (paging) => {
    const response = loaded.get(paging) as Bundle;
    expect(response.type).toBe('transaction-response');
    expect(response.entry).toHaveLength(bundle.entry?.length ?? 0);
    for (const entry of response.entry ?? []) {
      expect(entry.response?.status).toMatch(/^20[01]$/);
    }
  });

  test.each(styles)('pages through every resource type with %s next links', async (paging) => {
    const client = clients.get(paging) as FhirKitClient;
    for (const [resourceType, expected] of Object.entries(expectedCounts)) {
      const { resources, pages, nextLinks } = await pageThrough(client, await client.search({ resourceType, searchParams: { _count: PAGE_SIZE } }));
      expect({ resourceType, count: resources.length }).toEqual({ resourceType, count: expected });
      expect(new Set(resources.map((resource) => resource.id)).size).toBe(expected);
      expect(resources.every((resource) => resource.resourceType === resourceType)).toBe(true);
      expect(pages).toBe(Math.max(1, Math.ceil(expected / PAGE_SIZE)));
      for (const link of nextLinks) {
        expect(link).toContain(paging === 'offset' ? '_offset=' : '_getpages=');
      }
    }
  });

  test.each(styles)('Patient/$everything, paged (%s), returns every resource of the patient compartment', async (paging) => {
    const client = clients.get(paging) as FhirKitClient;
    const expected = expectedCompartment(bundle, loaded.get(paging) as Bundle);
    const first = await client.operation({ name: '$everything', resourceType: 'Patient', id: expected.patientId, method: 'GET', input: { _count: 25 } });
    const { resources, pages } = await pageThrough(client, first);
    const returned = resources.map((resource) => `${resource.resourceType}/${resource.id}`);
    expect(new Set(returned).size).toBe(returned.length);
    expect(returned[0]).toBe(`Patient/${expected.patientId}`);
    expect(pages).toBeGreaterThan(1);
    const missing = [...expected.members].filter((reference) => !returned.includes(reference));
    expect(missing).toEqual([]);
    // Whatever else comes back is referenced by a compartment member (practitioners, organizations…).
    const extra = returned.filter((reference) => !expected.members.has(reference));
    expect(extra.every((reference) => expected.referenced.has(reference))).toBe(true);
  });
});

async function pageThrough(client: FhirKitClient, first: unknown): Promise<{ resources: Resource[]; pages: number; nextLinks: string[] }> {
  const resources: Resource[] = [];
  const nextLinks: string[] = [];
  let page = first as Bundle | undefined;
  let pages = 0;
  while (page) {
    pages++;
    resources.push(...(page.entry ?? []).filter((entry) => entry.search?.mode !== 'include').map((entry) => entry.resource as Resource));
    const next = page.link?.find((link) => link.relation === 'next')?.url;
    if (next) {
      nextLinks.push(next);
    }
    page = fromKit<Bundle | undefined>(await client.nextPage({ bundle: toKitPage(page) }));
  }
  return { resources, pages, nextLinks };
}

/**
 * Computed from the input bundle, independently of the server's search: the patient, and every
 * resource of a compartment type that refers to the patient (by fullUrl or Patient/id), translated
 * to the ids the server assigned (from the transaction response, entry by entry).
 */
function expectedCompartment(input: Bundle, response: Bundle): { patientId: string; members: Set<string>; referenced: Set<string> } {
  const serverReference = (index: number): string => {
    const resource = response.entry?.[index]?.resource as Resource;
    return `${resource.resourceType}/${resource.id}`;
  };
  const entries = input.entry as BundleEntry[];
  const patientIndex = entries.findIndex((entry) => entry.resource?.resourceType === 'Patient');
  const patientEntry = entries[patientIndex];
  const patientNames = [patientEntry.fullUrl, `Patient/${(patientEntry.resource as Resource).id}`].filter(Boolean) as string[];
  const compartmentTypes = new Set(patientCompartment().map((membership) => membership.resourceType));
  const members = new Set<string>([serverReference(patientIndex)]);
  const localToServer = new Map<string, string>();
  entries.forEach((entry, index) => {
    const resource = entry.resource as Resource;
    if (entry.fullUrl) {
      localToServer.set(entry.fullUrl, serverReference(index));
    }
    localToServer.set(`${resource.resourceType}/${resource.id}`, serverReference(index));
    const json = JSON.stringify(resource);
    if (compartmentTypes.has(resource.resourceType) && patientNames.some((name) => json.includes(`"reference":"${name}"`))) {
      members.add(serverReference(index));
    }
  });
  const referenced = new Set<string>();
  entries.forEach((entry, index) => {
    if (!members.has(serverReference(index))) {
      return;
    }
    for (const [, target] of JSON.stringify(entry.resource).matchAll(/"(?:reference|url)":"([^"]+)"/g)) {
      const resolved = localToServer.get(target);
      if (resolved) {
        referenced.add(resolved);
      }
    }
  });
  return { patientId: serverReference(patientIndex).split('/')[1], members, referenced };
}
