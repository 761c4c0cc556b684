import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { SHARED_DATA } from '../support/synthea';

/**
 * Attachments of pulled resources land in the content-addressed blob store, checked against the
 * declared size and SHA-1: inline data (line-wrapped base64 is legal FHIR), Binary URLs, a
 * mismatch recorded rather than ignored, and a size cap with a clear error.
 */
let svc: TestService;
let ehr: SandboxServer;

const binaryExample = JSON.parse(fs.readFileSync(path.join(SHARED_DATA, 'fhir/hl7-r4-examples/Binary-example.json'), 'utf8')) as { id: string; contentType: string; data: string };
const pdf = Buffer.from(binaryExample.data.replace(/\s+/g, ''), 'base64');
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('base64');
const small = Buffer.from('%PDF-1.4\n% a small document\n%%EOF\n');
const tooBig = Buffer.alloc(200_000, 7);

beforeAll(async () => {
  svc = await startTestService({ MAX_ATTACHMENT_BYTES: '150000' }, FAST_CLIENT);
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  const doc = (id: string, attachment: Record<string, unknown>) => ({
    resourceType: 'DocumentReference' as const,
    id,
    status: 'current' as const,
    subject: { reference: 'Patient/p1' },
    content: [{ attachment: { contentType: 'application/pdf', ...attachment } }],
  });
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    { resourceType: 'Binary', id: 'pdf1', contentType: 'application/pdf', data: binaryExample.data },
    doc('wrapped-inline', { data: binaryExample.data, size: pdf.length, hash: sha1(pdf) }),
    doc('by-url', { url: 'Binary/pdf1', size: pdf.length, hash: sha1(pdf) }),
    doc('mismatch', { data: small.toString('base64'), size: small.length + 5, hash: sha1(Buffer.from('something else')) }),
    doc('undeclared', { data: small.toString('base64') }),
    doc('too-big', { data: tooBig.toString('base64') }),
  ]);
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

it('stores every attachment by content hash and records how it compares with what was declared', async () => {
  const admin = await svc.token('admin');
  const cm = await svc.token('case_manager');
  const endpoint = (await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
  ).json()) as { id: string };
  const intake = intakeForChild('Ada', 'Quill', '2016-01-02');
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intake })).json()) as { id: string };
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpoint.id, patient: { match: true } } });
  expect(await source.json()).toMatchObject({ state: 'resolved', remotePatientId: 'p1' });
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string; totals: Record<string, number> },
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    60_000,
  );
  expect(pull.state).toBe('complete');

  const { rows } = await svc.service.db.query<{ remote_id: string; resource_type: string; state: string; integrity: string | null; size: number | null; blob_sha256: string | null; error: string | null }>(
    'SELECT remote_id, resource_type, state, integrity, size, blob_sha256, error FROM attachments WHERE case_id = $1 ORDER BY resource_type, remote_id',
    [caseId],
  );
  const byId = Object.fromEntries(rows.map((r) => [`${r.resource_type}/${r.remote_id}`, r]));
  const pdfSha256 = createHash('sha256').update(pdf).digest('hex');
  expect(byId['DocumentReference/wrapped-inline']).toMatchObject({ state: 'fetched', integrity: 'verified', size: pdf.length, blob_sha256: pdfSha256 });
  expect(byId['DocumentReference/by-url']).toMatchObject({ state: 'fetched', integrity: 'verified', size: pdf.length, blob_sha256: pdfSha256 });
  expect(byId['Binary/pdf1']).toMatchObject({ state: 'fetched', blob_sha256: pdfSha256 });
  expect(byId['DocumentReference/mismatch']).toMatchObject({ state: 'fetched', integrity: 'size-and-hash-mismatch' });
  expect(byId['DocumentReference/undeclared']).toMatchObject({ state: 'fetched', integrity: 'unverified' });
  expect(byId['DocumentReference/too-big']).toMatchObject({ state: 'failed', blob_sha256: null });
  expect(byId['DocumentReference/too-big']?.error).toMatch(/150000-byte cap/);
  // The same bytes are stored once, at their hash, exactly as received.
  const stored = fs.readFileSync(path.join(svc.config.dataDir, 'blobs', pdfSha256.slice(0, 2), pdfSha256.slice(2, 4), pdfSha256));
  expect(stored.equals(pdf)).toBe(true);
  const { rows: blobs } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM blobs WHERE sha256 = $1', [pdfSha256]);
  expect(blobs[0]?.n).toBe(1);
});
