import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Attachment, Bundle, DiagnosticReport, DocumentReference } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { openCaseAtEndpoint, pullAndAssemble as pullCaseAndAssemble } from '../support/pull-and-assemble';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A new version of a document or report pointing at a new Binary (or carrying new inline data) has
 * that content fetched into the blob store, and the bundle assembled after it carries the new
 * content's `Attachment.hash` and `size` (https://hl7.org/fhir/R4/datatypes.html#Attachment), never
 * the ones of the file fetched for the earlier version, which content-based dedupe would trust.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let caseId: string;

const bytes = {
  letter1: Buffer.from('%PDF-1.4\n% discharge letter, first issue\n%%EOF\n'),
  letter2: Buffer.from('%PDF-1.4\n% discharge letter, amended: the dose was wrong in the first issue\n%%EOF\n'),
  report1: Buffer.from('%PDF-1.4\n% pathology report\n%%EOF\n'),
  report2: Buffer.from('%PDF-1.4\n% pathology report, addendum added\n%%EOF\n'),
  note1: Buffer.from('Progress note: fever since Monday.'),
  note2: Buffer.from('Progress note: fever since Monday. Rash on the arms since Wednesday.'),
};
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('base64');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const binary = (id: string, b: Buffer) => ({ resourceType: 'Binary' as const, id, contentType: 'application/pdf', data: b.toString('base64') });
const letter = (binaryId: string): DocumentReference => ({
  resourceType: 'DocumentReference',
  id: 'letter',
  status: 'current',
  description: 'Discharge letter',
  subject: { reference: 'Patient/p1' },
  content: [{ attachment: { contentType: 'application/pdf', url: `Binary/${binaryId}` } }],
});
const note = (b: Buffer): DocumentReference => ({
  resourceType: 'DocumentReference',
  id: 'note',
  status: 'current',
  description: 'Progress note',
  subject: { reference: 'Patient/p1' },
  content: [{ attachment: { contentType: 'text/plain', data: b.toString('base64') } }],
});
const report = (binaryId: string): DiagnosticReport => ({
  resourceType: 'DiagnosticReport',
  id: 'pathology',
  status: 'final',
  code: { text: 'Pathology report' },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2026-01-07T09:00:00Z',
  presentedForm: [{ contentType: 'application/pdf', url: `Binary/${binaryId}` }],
});

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'ehr', auth: 'none' })]);
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    binary('letter-1', bytes.letter1),
    binary('report-1', bytes.report1),
    letter('letter-1'),
    report('report-1'),
    note(bytes.note1),
  ]);
  cm = await svc.token('case_manager');
  caseId = await openCaseAtEndpoint(svc, cm, { name: 'EHR', baseUrl: ehr.baseUrl });
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

/** Pulls the case's records and waits for the bundle version the pull assembled; returns that bundle. */
const pullAndAssemble = (): Promise<Bundle> => pullCaseAndAssemble(svc, cm, caseId);

/** The hash and size of the bundle's attachments: the letter's, the note's and the report's. */
function attachmentsIn(bundle: Bundle): Record<'letter' | 'note' | 'report', Pick<Attachment, 'hash' | 'size'>> {
  const resources = (bundle.entry ?? []).map((e) => e.resource);
  const doc = (description: string) => {
    const found = resources.filter((r): r is DocumentReference => r?.resourceType === 'DocumentReference' && r.description === description);
    expect(found).toHaveLength(1);
    return found[0]?.content[0]?.attachment;
  };
  const reports = resources.filter((r): r is DiagnosticReport => r?.resourceType === 'DiagnosticReport' && r.code.text === 'Pathology report');
  expect(reports).toHaveLength(1);
  const pick = (a: Attachment | undefined) => ({ hash: a?.hash, size: a?.size });
  return { letter: pick(doc('Discharge letter')), note: pick(doc('Progress note')), report: pick(reports[0]?.presentedForm?.[0]) };
}

/** Blob digests of the fetched attachments of a remote resource (any version). */
async function fetchedBlobsOf(resourceType: string, remoteId: string): Promise<string[]> {
  const { rows } = await svc.service.db.query<{ blob_sha256: string }>(
    `SELECT blob_sha256 FROM attachments WHERE case_id = $1 AND resource_type = $2 AND remote_id = $3 AND state = 'fetched' ORDER BY blob_sha256`,
    [caseId, resourceType, remoteId],
  );
  return rows.map((r) => r.blob_sha256);
}

it('fetches the content a new version points at and fills the bundle from it, not from the earlier file', async () => {
  const first = attachmentsIn(await pullAndAssemble());
  expect(first).toEqual({
    letter: { hash: sha1(bytes.letter1), size: bytes.letter1.length },
    note: { hash: sha1(bytes.note1), size: bytes.note1.length },
    report: { hash: sha1(bytes.report1), size: bytes.report1.length },
  });

  // The care team amends the letter and the report (new Binaries) and edits the note's text.
  await ehr.load([binary('letter-2', bytes.letter2), binary('report-2', bytes.report2)]);
  await ehr.load([letter('letter-2'), report('report-2'), note(bytes.note2)]);
  const second = attachmentsIn(await pullAndAssemble());
  expect(second).toEqual({
    letter: { hash: sha1(bytes.letter2), size: bytes.letter2.length },
    note: { hash: sha1(bytes.note2), size: bytes.note2.length },
    report: { hash: sha1(bytes.report2), size: bytes.report2.length },
  });
  // Each content was fetched into the blob store, the earlier one kept beside it.
  expect(await fetchedBlobsOf('DocumentReference', 'letter')).toEqual([sha256(bytes.letter1), sha256(bytes.letter2)].sort());
  expect(await fetchedBlobsOf('DiagnosticReport', 'pathology')).toEqual([sha256(bytes.report1), sha256(bytes.report2)].sort());
  expect(await fetchedBlobsOf('DocumentReference', 'note')).toEqual([sha256(bytes.note1), sha256(bytes.note2)].sort());
  const stored = fs.readFileSync(path.join(svc.config.dataDir, 'blobs', sha256(bytes.letter2).slice(0, 2), sha256(bytes.letter2).slice(2, 4), sha256(bytes.letter2)));
  expect(stored.equals(bytes.letter2)).toBe(true);
}, 180_000);
