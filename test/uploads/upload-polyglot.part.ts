/**
 * The audit's findings on odd files, end to end: real service (API + workers), real PostgreSQL and
 * Redis, real HTTP, the DICOM files of ../shared/data read in place.
 *
 * - A file that is both DICOM and PDF (`DICM` at 128, `%PDF-` in its preamble and a PDF after the
 *   pixels: a polyglot) was indexed as DICOM only, so the active-content check of PDFs never saw it.
 *   It is now inspected as a PDF too and flagged (`polyglot`, plus the active content), and stays
 *   flagged through identity review.
 * - A zip entry whose name an earlier entry has was dropped even with other content: it is now kept as
 *   `name (2)` and flagged; one of the same content is still refused (the blob store keeps one copy).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, ImagingStudy } from 'fhir/r4';
import { syntheticDicom } from '../../src/imaging/synthetic-dicom';
import { logger } from '../../src/log';
import { DUPLICATE_NAME_REASON, POLYGLOT_REASON } from '../../src/uploads/ingest';
import { UPLOAD_FLAG_SYSTEM } from '../../src/uploads/origin';
import { DUPLICATE_ENTRY_REASON } from '../../src/uploads/zip-archive';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { CaptureTransport } from '../support/capture-log';
import { sampleIntake } from '../support/intake';
import type { TestService } from '../support/service';
import { uploadAndIngest } from '../support/uploads';
import { buildZip } from './zip-writer';

const DICOM = path.resolve(__dirname, '../../../shared/data/dicom');
const MR = fs.readFileSync(path.join(DICOM, 'pydicom__MR_small_implicit.dcm'));
const MR_RLE = fs.readFileSync(path.join(DICOM, 'pydicom__MR_small_RLE.dcm'));

/**
 * The audit's polyglot (/tmp/audit-uploads/poly.js): a DICOM file whose 128-byte preamble starts with a
 * PDF header, and after whose Pixel Data a one-page PDF follows, with an OpenAction running JavaScript.
 */
function polyglot(dicom: Buffer, script = true): Buffer {
  const preamble = Buffer.alloc(128, 0x20);
  Buffer.from('%PDF-1.4\n%\xe2\xe3\n', 'latin1').copy(preamble, 0);
  preamble[127] = 0x0a;
  let out = `${Buffer.concat([preamble, dicom.subarray(128)]).toString('latin1')}\n`;
  const objects = [
    `<< /Type /Catalog /Pages 2 0 R${script ? ' /OpenAction 4 0 R' : ''} >>`,
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>',
    '<< /Type /Action /S /JavaScript /JS (app.alert\\("polyglot"\\)) >>',
  ].slice(0, script ? 4 : 3);
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService(), (s) => ({ svc, cm } = s));

/** Opens a case for the child named (the sample intake's child by default) and returns its id. */
async function openCaseOf(name?: { given: string[]; family: string }): Promise<string> {
  const intake = sampleIntake();
  return openCase(svc, cm, name ? { ...intake, patient: { ...intake.patient, name } } : intake);
}

const studies = (bundle: Bundle): ImagingStudy[] => (bundle.entry ?? []).map((e) => e.resource).filter((r): r is ImagingStudy => r?.resourceType === 'ImagingStudy');
const flagTags = (study: ImagingStudy | undefined): string[] => (study?.meta?.tag ?? []).filter((t) => t.system === UPLOAD_FLAG_SYSTEM).map((t) => t.code ?? '');

describe('a file that is both DICOM and PDF', () => {
  it("the audit's polyglot (real MR file, JavaScript PDF), named like a PDF: flagged polyglot with its active content, the study tagged; no name in the logs", async () => {
    const capture = new CaptureTransport();
    logger.add(capture);
    try {
      const caseId = await openCaseOf({ given: ['MR1'], family: 'CompressedSamples' });
      const { upload, bundle } = await uploadAndIngest(svc, cm, caseId, [{ name: 'report-Quillon.pdf', data: polyglot(MR) }]);
      expect(upload.files).toHaveLength(1);
      const file = upload.files[0];
      expect(file).toMatchObject({ name: 'report-Quillon.pdf', kind: 'dicom', state: 'flagged' });
      // Identity review (no birth date in MR1) adds its reason; the polyglot's own reason stays.
      expect(file?.reason).toContain(`${POLYGLOT_REASON}; PDF holds active content (JavaScript): kept; open it only in a viewer that runs nothing`);
      const [study] = studies(bundle);
      expect(flagTags(study)).toEqual(expect.arrayContaining(['polyglot', 'active-content']));
      expect(capture.lines.join('\n')).not.toContain('Quillon');
      // Served as what it was found to be, under a name with its extension, and never sniffed by the browser.
      const download = await svc.request('GET', `/api/cases/${caseId}/uploads/files/${file?.id ?? ''}`, { token: cm });
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('application/dicom');
      expect(download.headers.get('x-content-type-options')).toBe('nosniff');
      expect(download.headers.get('content-disposition')).toBe("attachment; filename*=UTF-8''report-Quillon.pdf.dcm");
      await download.arrayBuffer();
    } finally {
      logger.remove(capture);
    }
  }, 120_000);

  it('a polyglot whose patient matches the case stays flagged after identity review; a plain DICOM file beside it is parsed', async () => {
    const caseId = await openCaseOf();
    const child = { patientName: 'Marrowvale^Zinnia', birthDate: '20170314', studyUid: '1.2.826.0.1.3680043.2.1143.901', seriesUid: '1.2.826.0.1.3680043.2.1143.901.1' };
    const plain = syntheticDicom({ ...child, sopUid: '1.2.826.0.1.3680043.2.1143.901.1.1' });
    const both = polyglot(syntheticDicom({ ...child, sopUid: '1.2.826.0.1.3680043.2.1143.901.1.2' }), false);
    const { upload, bundle } = await uploadAndIngest(svc, cm, caseId, [
      { name: 'IM1', data: plain },
      { name: 'IM2', data: both },
    ]);
    expect(upload.files.map((f) => [f.name, f.kind, f.state, f.reason])).toEqual([
      ['IM1', 'dicom', 'parsed', null],
      ['IM2', 'dicom', 'flagged', POLYGLOT_REASON],
    ]);
    const [study] = studies(bundle);
    expect(study?.numberOfInstances).toBe(2);
    expect(flagTags(study)).toEqual(['polyglot']);
  }, 120_000);
});

describe('a zip with two entries of one name', () => {
  it("the audit's zip: a/IM1 twice with other content, both kept (the second as 'a/IM1 (2)', flagged); a third copy of the first is refused, nothing lost", async () => {
    const caseId = await openCaseOf({ given: ['MR1'], family: 'CompressedSamples' });
    const zip = buildZip([
      { name: 'a/IM1', data: MR },
      { name: 'a/IM1', data: MR_RLE },
      { name: 'a\\IM1', data: MR },
    ]);
    const { upload, bundle } = await uploadAndIngest(svc, cm, caseId, [{ name: 'cd.zip', data: zip }]);
    const view = upload.files.map((f) => ({ name: f.name, kind: f.kind, state: f.state, reason: f.reason }));
    expect(view).toEqual([
      { name: 'cd.zip', kind: 'zip', state: 'parsed', reason: '1 entry refused' },
      { name: 'a/IM1', kind: 'dicom', state: 'flagged', reason: 'identity review: birth date missing in the file' },
      { name: 'a/IM1 (2)', kind: 'dicom', state: 'flagged', reason: `identity review: birth date missing in the file; ${DUPLICATE_NAME_REASON}` },
      { name: 'a/IM1', kind: 'unknown', state: 'unparsed', reason: `refused: ${DUPLICATE_ENTRY_REASON}` },
    ]);
    // The RLE copy is the same SOP instance in another transfer syntax: one instance of the study.
    expect(studies(bundle).map((s) => s.numberOfInstances)).toEqual([1]);
  }, 120_000);

  it('with matching identity, the second entry stays flagged for its name alone; both instances are in the study', async () => {
    const caseId = await openCaseOf();
    const child = { patientName: 'Marrowvale^Zinnia', birthDate: '20170314', studyUid: '1.2.826.0.1.3680043.2.1143.902', seriesUid: '1.2.826.0.1.3680043.2.1143.902.1' };
    const zip = buildZip([
      { name: 'DICOM/IM1', data: syntheticDicom({ ...child, sopUid: '1.2.826.0.1.3680043.2.1143.902.1.1' }) },
      { name: 'DICOM/IM1', data: syntheticDicom({ ...child, sopUid: '1.2.826.0.1.3680043.2.1143.902.1.2' }) },
    ]);
    const { upload, bundle } = await uploadAndIngest(svc, cm, caseId, [{ name: 'cd.zip', data: zip }]);
    expect(upload.files.map((f) => [f.name, f.state, f.reason])).toEqual([
      ['cd.zip', 'parsed', null],
      ['DICOM/IM1', 'parsed', null],
      ['DICOM/IM1 (2)', 'flagged', DUPLICATE_NAME_REASON],
    ]);
    expect(studies(bundle).map((s) => s.numberOfInstances)).toEqual([2]);
  }, 120_000);
});
