/**
 * A hostile DICOM file among a family's files: a valid Part 10 file whose header holds 4 million empty
 * elements (32 MB, far below MAX_UPLOAD_FILE_BYTES). Parsing it whole would exhaust the DICOM thread's
 * heap, which can abort the whole ingest process (src/imaging/dicom-parse-budget.ts). And an implicit
 * VR file whose Patient Name is 16 MiB long (PS3.5 §6.2 allows 64 characters per component group): the
 * value is never decoded (src/imaging/dicom-header.ts, `valueByteBound`). Real service
 * (API + workers), real PostgreSQL and Redis, real HTTP; the PDF from ../shared/data, read in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import { manyElementsDicom } from '../imaging/support';
import { implicitVrDicom } from '../imaging/support';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import type { TestService } from '../support/service';
import { uploadAndIngest, type UploadView } from '../support/uploads';

const LETTER = fs.readFileSync(path.resolve(__dirname, '../../../shared/data/pdf/minimal-document.pdf'));

let svc: TestService;
let cm: string;

// The verdict under test is the parse's read budget, not the thread's time limit: on a loaded machine
// the 4-million-element header took longer than the default 10 s to reach its budget, and was reported
// as a timeout instead (the time limit has tests of its own).
startForFile(() => startCaseManagerService({ DICOM_PARSE_TIMEOUT_MS: '90000' }), (s) => ({ svc, cm } = s));

/** Opens a case and uploads `dicom` (as `name`) beside a letter; the upload once ingested, and the bundle it was assembled into. */
async function uploadBesideALetter(dicom: Buffer, name: string): Promise<{ upload: UploadView; bundle: Bundle }> {
  return uploadAndIngest(svc, cm, await openCase(svc, cm), [
    { name, data: dicom },
    { name: 'letter.pdf', data: LETTER },
  ]);
}

it('a DICOM header of 4 million elements is listed unparsed with the reason; the ingest worker lives on and the rest of the upload reaches the bundle', async () => {
  const { upload, bundle } = await uploadBesideALetter(manyElementsDicom(4_000_000, '1.2.826.0.1.3680043.2.1143.77'), 'IM000001');
  expect(upload.files.map((f) => ({ name: f.name, kind: f.kind, state: f.state, reason: f.reason }))).toEqual([
    { name: 'IM000001', kind: 'dicom', state: 'unparsed', reason: expect.stringMatching(/more elements and items than a DICOM header/) },
    { name: 'letter.pdf', kind: 'pdf', state: 'parsed', reason: null },
  ]);
  const types = (bundle.entry ?? []).map((e) => e.resource?.resourceType);
  expect(types).toContain('DocumentReference');
  expect(types).not.toContain('ImagingStudy');
}, 120_000);

it('an implicit VR file with a 16 MiB Patient Name: indexed without the name, flagged with a reason that says why; the name is nowhere in the bundle', async () => {
  const { upload, bundle } = await uploadBesideALetter(implicitVrDicom({ patientName: Buffer.alloc(16 * 1024 * 1024, 'ZQXJ^') }), 'IM000002');
  expect(upload.files.map((f) => ({ name: f.name, kind: f.kind, state: f.state, reason: f.reason }))).toEqual([
    {
      name: 'IM000002',
      kind: 'dicom',
      state: 'flagged',
      reason: expect.stringMatching(/values far longer than DICOM allows were left out: Patient's Name \(0010,0010\) not read: its value is 16777216 bytes, over the 3104-byte bound for PN/),
    },
    { name: 'letter.pdf', kind: 'pdf', state: 'parsed', reason: null },
  ]);
  const types = (bundle.entry ?? []).map((e) => e.resource?.resourceType);
  expect(types).toEqual(expect.arrayContaining(['ImagingStudy', 'DocumentReference']));
  expect(JSON.stringify(bundle)).not.toContain('ZQXJ^ZQXJ');
}, 120_000);
