/**
 * FHIR interactions beyond paging: transactions (large, conditional references, atomic), batches,
 * conditional create, Binary bytes, attachments by URL, reference normalization, _lastUpdated/_since,
 * _include/_revinclude, search errors, expired page tokens, and the request/write logs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Binary, Bundle, DiagnosticReport, DocumentReference, Observation, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { SandboxLoadError, startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { publicDataFiles, readBundle, SHARED_FHIR_DIR } from './support/public-data';

let server: SandboxServer;
let clock = Date.parse('2024-03-01T12:00:00Z');

beforeAll(async () => {
  server = await startSandboxServer({ name: 'interactions', auth: 'none', now: () => clock, snapshotTtlMs: 60_000 });
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  server.reset();
  server.faults.clear();
});

async function fhir<T = Resource>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(url.startsWith('http') ? url : `${server.baseUrl}/${url}`, {
    method,
    headers: { accept: 'application/fhir+json', ...(body === undefined ? {} : { 'content-type': 'application/fhir+json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, headers: response.headers };
}

describe('synthea-hiv: reference batches with ifNoneExist, then a 706-entry transaction with conditional references', () => {
  const hivFiles = publicDataFiles('synthea-hiv');
  const hospitals = hivFiles.find((file) => file.includes('hospitalInformation')) as string;
  const practitioners = hivFiles.find((file) => file.includes('practitionerInformation')) as string;
  const lanell = hivFiles.find((file) => file.includes('Lanell756')) as string;

  test('loads, resolves every conditional reference, and re-posting the batch creates nothing new', async () => {
    for (const file of [hospitals, practitioners]) {
      const response = await fhir<Bundle>('POST', '', readBundle(file));
      expect(response.status).toBe(200);
      expect(response.body.type).toBe('batch-response');
      expect(response.body.entry?.every((entry) => entry.response?.status === '201')).toBe(true);
    }
    const patient = readBundle(lanell);
    expect(patient.entry).toHaveLength(706);
    const response = await fhir<Bundle>('POST', '', patient);
    expect(response.status).toBe(200);
    expect(response.body.type).toBe('transaction-response');
    expect(response.body.entry?.every((entry) => entry.response?.status === '201')).toBe(true);

    const stored = (response.body.entry ?? []).map((entry) => entry.resource as Resource);
    const references = stored.flatMap((resource) => [...JSON.stringify(resource).matchAll(/"reference":"([^"]+)"/g)].map((match) => match[1]));
    expect(references.filter((reference) => reference.includes('?') || reference.startsWith('urn:'))).toEqual([]);
    for (const reference of new Set(references.filter((reference) => !reference.startsWith('#')))) {
      const [type, id] = reference.split('/');
      expect({ reference, found: server.read(type as Resource['resourceType'], id) !== undefined }).toEqual({ reference, found: true });
    }

    const again = await fhir<Bundle>('POST', '', readBundle(hospitals));
    expect(again.body.entry?.every((entry) => entry.response?.status === '200')).toBe(true);
    const count = await fhir<Bundle>('GET', 'Organization?_summary=count');
    expect(count.body.total).toBe(1191);
    expect(server.requestCount('POST /')).toBe(4);
    expect(server.requestCount('GET /Organization')).toBe(1);
  });
});

describe('transactions and batches', () => {
  test('a transaction with one failing entry writes nothing (atomic)', async () => {
    const response = await fhir<OperationOutcome>('POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:7d0e1a52-0b1c-4c1e-9d1e-000000000001', resource: { resourceType: 'Patient', name: [{ family: 'Atomic' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', id: 'obs-1', status: 'final', code: { text: 'x' } }, request: { method: 'PUT', url: 'Observation/other-id' } },
      ],
    });
    expect(response.status).toBe(400);
    expect(response.body.resourceType).toBe('OperationOutcome');
    expect((await fhir<Bundle>('GET', 'Patient?_summary=count')).body.total).toBe(0);
    expect(server.writtenResources()).toHaveLength(0);
  });

  test('a transaction whose conditional reference matches nothing fails', async () => {
    const response = await fhir<OperationOutcome>('POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, serviceProvider: { reference: 'Organization?identifier=urn:x|missing' } }, request: { method: 'POST', url: 'Encounter' } }],
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain('matched no resource');
  });

  test('a batch applies the good entries and reports the bad one', async () => {
    const response = await fhir<Bundle>('POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', id: 'p1' }, request: { method: 'PUT', url: 'Patient/p1' } },
        { resource: { resourceType: 'Patient', id: 'p2' }, request: { method: 'PUT', url: 'Patient/p3' } },
        { request: { method: 'GET', url: 'Patient/p1' } },
      ],
    });
    expect(response.status).toBe(200);
    expect(response.body.entry?.map((entry) => entry.response?.status)).toEqual(['201', '400', '200']);
    expect(server.read('Patient', 'p1')).toBeDefined();
    expect(server.writtenResources('Patient').map((written) => written.id)).toEqual(['p1']);
  });
});

describe('conditional create (If-None-Exist)', () => {
  test('the second create with the same identifier returns the existing resource with 200', async () => {
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      status: 'final',
      identifier: [{ system: 'urn:second-opinion:report', value: 'case-42-v1' }],
      code: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
      subject: { reference: 'Patient/p1' },
    };
    const ifNoneExist = { 'if-none-exist': 'identifier=urn:second-opinion:report|case-42-v1' };
    const first = await fhir<DiagnosticReport>('POST', 'DiagnosticReport', report, ifNoneExist);
    const second = await fhir<DiagnosticReport>('POST', 'DiagnosticReport', report, ifNoneExist);
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toContain(`/DiagnosticReport/${first.body.id}/_history/`);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect((await fhir<Bundle>('GET', 'DiagnosticReport?_summary=count')).body.total).toBe(1);
    expect(server.writtenResources('DiagnosticReport')).toHaveLength(1);
  });

  test('concurrent identical conditional creates create exactly one resource', async () => {
    const communication = { resourceType: 'Communication', status: 'completed', identifier: [{ system: 'urn:notice', value: 'n-1' }] };
    const results = await Promise.all(
      Array.from({ length: 10 }, () => fhir<Resource>('POST', 'Communication', communication, { 'if-none-exist': 'identifier=urn:notice|n-1' }))
    );
    expect(results.map((result) => result.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((result) => result.body.id)).size).toBe(1);
    expect(server.writtenResources('Communication')).toHaveLength(1);
  });

  test('the server assigns the id of a create, whatever the client sent', async () => {
    await server.load([{ resourceType: 'Patient', id: 'keep-me', name: [{ family: 'Original' }] }]);
    const created = await fhir<Resource>('POST', 'Patient', { resourceType: 'Patient', id: 'keep-me', name: [{ family: 'Intruder' }] });
    expect(created.status).toBe(201);
    expect(created.body.id).not.toBe('keep-me');
    expect(server.read('Patient', 'keep-me')).toMatchObject({ name: [{ family: 'Original' }] });
  });
});

describe('read, update, history, patch, delete (Medplum router)', () => {
  test('versions, If-Match, history newest first (stable across calls), JSON Patch, delete', async () => {
    const created = await fhir<Resource>('PUT', 'Patient/h1', { resourceType: 'Patient', id: 'h1', gender: 'female' });
    expect(created.status).toBe(201);
    const v1 = created.body.meta?.versionId as string;
    expect(created.headers.get('etag')).toBe(`W/"${v1}"`);
    const stale = await fhir('PUT', 'Patient/h1', { resourceType: 'Patient', id: 'h1', gender: 'male' }, { 'if-match': 'W/"not-the-version"' });
    expect(stale.status).toBe(412);
    const updated = await fhir<Resource>('PUT', 'Patient/h1', { resourceType: 'Patient', id: 'h1', gender: 'male' }, { 'if-match': `W/"${v1}"` });
    expect(updated.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const history = await fhir<Bundle>('GET', 'Patient/h1/_history');
      expect(history.body.entry?.map((entry) => entry.resource?.meta?.versionId)).toEqual([updated.body.meta?.versionId, v1]);
    }
    const patched = await fetch(`${server.baseUrl}/Patient/h1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'add', path: '/birthDate', value: '2015-02-23' }]),
    });
    expect(patched.status).toBe(200);
    expect(server.read('Patient', 'h1')).toMatchObject({ gender: 'male', birthDate: '2015-02-23' });
    expect((await fhir('DELETE', 'Patient/h1')).status).toBe(200);
    expect((await fhir('GET', 'Patient/h1')).status).toBe(404);
    expect(server.writtenResources('Patient').map((written) => written.kind)).toEqual(['create', 'update', 'update', 'delete']);
  });
});

describe('Binary and attachments', () => {
  const pdf = readFileSync(path.join(SHARED_FHIR_DIR, '../pdf/minimal-document.pdf'));

  test('a raw PDF posted to Binary comes back byte for byte with Accept: application/pdf', async () => {
    const posted = await fetch(`${server.baseUrl}/Binary`, { method: 'POST', headers: { 'content-type': 'application/pdf' }, body: pdf });
    expect(posted.status).toBe(201);
    const { id } = (await posted.json()) as Binary;
    const raw = await fetch(`${server.baseUrl}/Binary/${id}`, { headers: { accept: 'application/pdf' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await raw.arrayBuffer()).equals(pdf)).toBe(true);
    const asFhir = await fhir<Binary>('GET', `Binary/${id}`);
    expect(asFhir.body).toMatchObject({ resourceType: 'Binary', contentType: 'application/pdf', data: pdf.toString('base64') });
  });

  test('the HL7 example Binary (line-wrapped base64) is served as its PDF bytes', async () => {
    const example = JSON.parse(readFileSync(path.join(SHARED_FHIR_DIR, 'hl7-r4-examples/Binary-example.json'), 'utf8')) as Binary;
    await server.load([example]);
    const raw = await fetch(`${server.baseUrl}/Binary/${example.id}`, { headers: { accept: '*/*' } });
    const bytes = Buffer.from(await raw.arrayBuffer());
    expect(bytes.equals(Buffer.from(example.data as string, 'base64'))).toBe(true);
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
  });

  test('DocumentReference attachments: inline data as loaded, or an absolute URL to this server’s Binary', async () => {
    const inferno = publicDataFiles('inferno-uscore').find((file) => file.includes('patient_85')) as string;
    const inline = await server.load(readBundle(inferno));
    const inlineDocs = await fhir<Bundle>('GET', 'DocumentReference?_count=100');
    expect(inlineDocs.body.total).toBe(inline.counts.DocumentReference);
    const withData = (inlineDocs.body.entry ?? []).map((entry) => entry.resource as DocumentReference).filter((doc) => doc.content?.[0]?.attachment?.data);
    expect(withData.length).toBe(inline.counts.DocumentReference);

    server.reset();
    const byUrl = await server.load(readBundle(inferno), { attachments: 'binary' });
    expect(byUrl.counts.Binary).toBeGreaterThanOrEqual(byUrl.counts.DocumentReference);
    const docs = await fhir<Bundle>('GET', 'DocumentReference?_count=100');
    const pdfDoc = (docs.body.entry ?? []).map((entry) => entry.resource as DocumentReference).find((doc) => doc.content?.[0]?.attachment?.contentType === 'application/pdf');
    const attachment = pdfDoc?.content?.[0]?.attachment;
    expect(attachment?.data).toBeUndefined();
    expect(attachment?.url).toMatch(new RegExp(`^${server.baseUrl}/Binary/[A-Za-z0-9-]+$`));
    const original = (readBundle(inferno).entry ?? [])
      .map((entry) => entry.resource as DocumentReference)
      .find((doc) => doc.resourceType === 'DocumentReference' && doc.content?.[0]?.attachment?.contentType === 'application/pdf');
    const bytes = Buffer.from(await (await fetch(attachment?.url as string, { headers: { accept: 'application/pdf' } })).arrayBuffer());
    expect(bytes.equals(Buffer.from(original?.content?.[0]?.attachment?.data as string, 'base64'))).toBe(true);
  });
});

describe('search', () => {
  beforeEach(async () => {
    await server.load([
      { resourceType: 'Patient', id: 'p1' },
      { resourceType: 'Patient', id: 'p2' },
      { resourceType: 'Practitioner', id: 'dr1' },
      { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' } },
      ...[1, 2, 3].map(
        (n): Observation => ({
          resourceType: 'Observation',
          id: `o${n}`,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: n === 3 ? '718-7' : '2339-0' }] },
          subject: { reference: n === 2 ? 'Patient/p2' : 'Patient/p1' },
          encounter: { reference: 'Encounter/e1' },
          performer: [{ reference: 'Practitioner/dr1' }],
          effectiveDateTime: `2023-0${n}-01`,
        })
      ),
    ]);
  });

  test('patient=<bare id>, subject=<bare id> and subject:Patient=<id> mean Patient/<id>', async () => {
    for (const query of ['patient=p1', 'patient=Patient/p1', 'subject=p1', 'subject:Patient=p1', `patient=${server.baseUrl}/Patient/p1`]) {
      const result = await fhir<Bundle>('GET', `Observation?${query}`);
      expect({ query, ids: result.body.entry?.map((entry) => entry.resource?.id) }).toEqual({ query, ids: ['o1', 'o3'] });
    }
  });

  test('token, date and _sort are evaluated by Medplum', async () => {
    const byCode = await fhir<Bundle>('GET', 'Observation?code=http://loinc.org|2339-0&date=ge2023-02-01');
    expect(byCode.body.entry?.map((entry) => entry.resource?.id)).toEqual(['o2']);
    const sorted = await fhir<Bundle>('GET', 'Observation?_sort=-date');
    expect(sorted.body.entry?.map((entry) => entry.resource?.id)).toEqual(['o3', 'o2', 'o1']);
  });

  test('_include and _revinclude add the referenced and referring resources', async () => {
    const included = await fhir<Bundle>('GET', 'Observation?patient=p1&_include=Observation:performer&_include=Observation:encounter');
    const entries = included.body.entry?.map((entry) => `${entry.search?.mode} ${entry.resource?.resourceType}/${entry.resource?.id}`);
    expect(entries?.slice(0, 2)).toEqual(['match Observation/o1', 'match Observation/o3']);
    expect(entries?.slice(2).sort()).toEqual(['include Encounter/e1', 'include Practitioner/dr1']);
    const revIncluded = await fhir<Bundle>('GET', 'Patient?_id=p2&_revinclude=Observation:subject');
    expect(revIncluded.body.entry?.map((entry) => `${entry.search?.mode} ${entry.resource?.id}`)).toEqual(['match p2', 'include o2']);
  });

  test('unknown parameters are ignored, or refused with Prefer: handling=strict; unsupported types are refused', async () => {
    const lenient = await fhir<Bundle>('GET', 'Observation?no-such-param=1');
    expect(lenient.body.total).toBe(3);
    expect(lenient.body.link?.find((link) => link.relation === 'self')?.url).not.toContain('no-such-param');
    expect((await fhir('GET', 'Observation?no-such-param=1', undefined, { prefer: 'handling=strict' })).status).toBe(400);
    expect((await fhir('GET', 'Observation?value-quantity=gt5')).status).toBe(400);
    expect((await fhir('GET', 'Observation?subject.name=x')).status).toBe(400);
    expect((await fhir('GET', 'Observation?_count=-1')).status).toBe(400);
    expect((await fhir('GET', 'NoSuchType')).status).toBe(404);
  });

  test('_count is capped at the server maximum, and _summary=count returns only the total', async () => {
    const capped = await fhir<Bundle>('GET', 'Observation?_count=100000');
    expect(capped.body.entry).toHaveLength(3);
    expect(capped.body.link?.find((link) => link.relation === 'self')?.url).toContain('_count=1000');
    const count = await fhir<Bundle>('GET', 'Observation?_summary=count');
    expect(count.body).toMatchObject({ total: 3 });
    expect(count.body.entry).toBeUndefined();
  });

  test('_lastUpdated and $everything _since see only what changed after the instant', async () => {
    const before = new Date(clock).toISOString();
    clock += 60_000;
    const since = new Date(clock).toISOString();
    const updated = await fhir<Observation>('PUT', 'Observation/o1', { resourceType: 'Observation', id: 'o1', status: 'amended', code: { text: 'x' }, subject: { reference: 'Patient/p1' } });
    expect(updated.status).toBe(200);
    expect(updated.body.meta?.lastUpdated).toBe(since);
    const changed = await fhir<Bundle>('GET', `Observation?_lastUpdated=ge${since}`);
    expect(changed.body.entry?.map((entry) => entry.resource?.id)).toEqual(['o1']);
    expect((await fhir<Bundle>('GET', `Observation?_lastUpdated=ge${before}`)).body.total).toBe(3);
    const everythingSince = await fhir<Bundle>('GET', `Patient/p1/$everything?_since=${encodeURIComponent(since)}`);
    expect(everythingSince.body.entry?.map((entry) => `${entry.resource?.resourceType}/${entry.resource?.id}`)).toEqual(['Observation/o1']);
    const onlyEncounters = await fhir<Bundle>('GET', 'Patient/p1/$everything?_type=Encounter');
    expect(onlyEncounters.body.entry?.map((entry) => entry.resource?.id)).toEqual(['e1']);
  });

  test('a search sees a write made after an earlier identical search (the cached snapshot is not reused)', async () => {
    expect((await fhir<Bundle>('GET', 'Observation?patient=p1')).body.total).toBe(2);
    await fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'new' }, subject: { reference: 'Patient/p1' } });
    expect((await fhir<Bundle>('GET', 'Observation?patient=p1')).body.total).toBe(3);
  });

  test('an expired page token answers 410 Gone', async () => {
    const tokenServer = await startSandboxServer({ name: 'token-expiry', auth: 'none', paging: 'token', now: () => clock, snapshotTtlMs: 1000 });
    try {
      await tokenServer.load([{ resourceType: 'Patient', id: 'a' }, { resourceType: 'Patient', id: 'b' }]);
      const first = (await (await fetch(`${tokenServer.baseUrl}/Patient?_count=1`)).json()) as Bundle;
      const next = first.link?.find((link) => link.relation === 'next')?.url as string;
      expect(next).toContain('_getpages=');
      expect((await fetch(next)).status).toBe(200);
      clock += 5000;
      expect((await fetch(next)).status).toBe(410);
    } finally {
      await tokenServer.stop();
    }
  });
});

describe('load()', () => {
  test('takes collection Bundles and resource arrays, and reports ids and counts', async () => {
    const lipids = JSON.parse(readFileSync(path.join(SHARED_FHIR_DIR, 'hl7-r4-examples/Bundle-lipids.json'), 'utf8')) as Bundle;
    const result = await server.load(lipids);
    expect(result.counts).toEqual({ DiagnosticReport: 1, Observation: 4 });
    expect(result.ids.Observation).toEqual(['cholesterol', 'triglyceride', 'hdlcholesterol', 'ldlcholesterol']);
    const withoutIds = await server.load([{ resourceType: 'Patient', name: [{ family: 'New' }] }]);
    expect(withoutIds.ids.Patient).toHaveLength(1);
    expect(server.writtenResources()).toHaveLength(0);
  });

  test('a failing transaction throws SandboxLoadError and writes nothing', async () => {
    const bad: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient', id: 'x' }, request: { method: 'PUT', url: 'Patient/y' } }] };
    await expect(server.load(bad)).rejects.toBeInstanceOf(SandboxLoadError);
    expect(server.read('Patient', 'x')).toBeUndefined();
  });
});
