/**
 * Family uploads end to end: real service (API + workers), real PostgreSQL and Redis, real HTTP, real
 * DICOM files and PDFs from ../shared/data (read in place).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, DocumentReference, ImagingStudy, Provenance } from 'fhir/r4';
import { PDFDocument } from 'pdf-lib';
import { BlobStore } from '../../src/blobs/blob-store';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { ORIGIN_SYSTEM } from '../../src/normalize/origin';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { ingestUpload, type IngestDeps } from '../../src/uploads/ingest';
import { runIngestJob } from '../../queues/ingest-upload';
import { UPLOAD_FLAG_SYSTEM } from '../../src/uploads/origin';
import { validationErrors } from '../normalize/normalize-support';
import { sampleIntake } from '../support/intake';
import { eventually, startTestService, type TestService } from '../support/service';
import { postUpload, type FileView as SharedFileView, type UploadFile, type UploadView as SharedUploadView } from '../support/uploads';
import { buildZip } from './zip-writer';
import { loadDomainData } from '../../src/cases/domain-data';

const DATA = path.resolve(__dirname, '../../../shared/data');
const dicom = (name: string): Buffer => fs.readFileSync(path.join(DATA, 'dicom', name));
const pdf = (name: string): Buffer => fs.readFileSync(path.join(DATA, 'pdf', name));

const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const MR_SERIES = '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457';
const CT_SERIES = '1.3.6.1.4.1.5962.1.3.1.1.20040826185059.5457';
const CR_STUDY = '1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.1';

/**
 * A two-series CD export: the real MR1 file and the real CT1 file, re-labelled into MR1's study and
 * patient by overwriting three values in place with values of the same length (Study Instance UID,
 * Patient's Name, Patient ID). Nothing else of the files changes.
 */
function twoSeriesStudy(): { mr: Buffer; ct: Buffer } {
  const ct = Buffer.from(dicom('dicomParser__CT1_UNC.explicit_little_endian.dcm'));
  const replace = (from: string, to: string): void => {
    const at = ct.indexOf(from, 0, 'latin1');
    expect(at).toBeGreaterThan(132);
    ct.write(to, at, 'latin1');
  };
  replace('1.3.6.1.4.1.5962.1.2.1.20040826185059.5457', MR_STUDY);
  replace('CompressedSamples^CT1', 'CompressedSamples^MR1');
  replace('1CT1', '4MR1');
  return { mr: dicom('pydicom__MR_small_implicit.dcm'), ct };
}

let svc: TestService;
let cm: string;

beforeAll(async () => {
  svc = await startTestService({ MAX_UPLOAD_FILE_BYTES: String(1024 * 1024), MAX_UPLOAD_CASE_BYTES: String(3 * 1024 * 1024) });
  cm = await svc.token('case_manager');
});
afterAll(async () => {
  await svc.stop();
});

async function openCase(): Promise<string> {
  const intake = sampleIntake();
  // The child of the CD: same name as in the files (their birth date is not in them: flagged for review).
  const res = await svc.request('POST', '/api/cases', {
    token: cm,
    body: { ...intake, patient: { ...intake.patient, name: { given: ['MR1'], family: 'CompressedSamples' } } },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const upload = (caseId: string, files: UploadFile[], token = cm): Promise<Response> => postUpload(svc, token, caseId, files);

interface FileView extends SharedFileView {
  details?: Record<string, unknown>;
}
interface UploadView extends SharedUploadView<FileView> {
  progress: Record<string, number>;
}

async function uploads(caseId: string, token = cm): Promise<UploadView[]> {
  const res = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: UploadView[] }).items;
}

/** Waits until the upload is ingested (every file decided, the case bundle assembled with it); returns both. */
async function ingested(caseId: string, uploadId: string): Promise<{ upload: UploadView; bundle: Bundle }> {
  const upload = (await eventually(
    async () => (await uploads(caseId)).find((u) => u.uploadId === uploadId),
    (u) => u?.state === 'ingested',
  )) as UploadView;
  const res = await svc.request('GET', `/api/cases/${caseId}/bundle?version=${upload.bundleVersion ?? 0}`, { token: cm });
  expect(res.status).toBe(200);
  return { upload, bundle: (await res.json()) as Bundle };
}

const resources = <T>(bundle: Bundle, type: string): T[] =>
  (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === type) as T[];
const tagCodes = (r: { meta?: { tag?: { system?: string; code?: string }[] } }, system: string): string[] =>
  (r.meta?.tag ?? []).filter((t) => t.system === system).map((t) => t.code ?? '');


/** Runs `use` with ingest dependencies of the test service (a DICOM worker pool closed afterwards), as the ingest job has them. */
async function withIngestDeps(use: (deps: IngestDeps) => Promise<void>): Promise<void> {
  const pool = new DicomWorkerPool({ timeoutMs: 10_000 });
  try {
    await use({
      db: svc.service.db,
      mappings: loadTerminologyMappings,
      blobs: new BlobStore(path.join(svc.config.dataDir, 'blobs')),
      pool,
      workDir: path.join(svc.config.dataDir, 'ingest-test'),
      uploads: svc.config.uploads,
    });
  } finally {
    await pool.close();
  }
}

describe('done: a zip of a multi-series study plus a PDF', () => {
  it('shows up in the case bundle as one ImagingStudy with its series and one DocumentReference, tagged as family uploads', async () => {
    const caseId = await openCase();
    const { mr, ct } = twoSeriesStudy();
    const zip = buildZip([
      { name: 'DICOM/', method: 0 },
      { name: 'DICOM/ST000001/SE000001/IM000001', data: mr },
      { name: 'DICOM/ST000001/SE000002/IM000001', data: ct },
      { name: 'AUTORUN.INF', data: Buffer.from('[autorun]\r\nopen=viewer.exe\r\n') },
    ]);
    const res = await upload(caseId, [
      { name: 'cd-export.zip', data: zip },
      { name: 'portal-letter.pdf', data: pdf('minimal-document.pdf') },
    ]);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as UploadView;
    expect(accepted.files.map((f) => [f.name, f.kind, f.state])).toEqual([
      ['cd-export.zip', 'zip', 'received'],
      ['portal-letter.pdf', 'pdf', 'received'],
    ]);

    const { upload: done, bundle } = await ingested(caseId, accepted.uploadId);
    // Every file is listed, parsed or not, with reasons; the zip's files under it.
    const byName = new Map(done.files.map((f) => [f.name, f]));
    expect(byName.get('cd-export.zip')).toMatchObject({ kind: 'zip', state: 'parsed', details: { files: 3, refused: 0 } });
    expect(byName.get('portal-letter.pdf')).toMatchObject({ kind: 'pdf', state: 'parsed', details: { pageCount: 1 } });
    expect(byName.get('AUTORUN.INF')).toMatchObject({ kind: 'unknown', state: 'unparsed', reason: expect.stringMatching(/not a PDF or a DICOM file/) });
    for (const name of ['DICOM/ST000001/SE000001/IM000001', 'DICOM/ST000001/SE000002/IM000001']) {
      // Read, but the files carry no birth date: flagged for case-manager review, never dropped.
      expect(byName.get(name)).toMatchObject({ kind: 'dicom', state: 'flagged', fromZip: byName.get('cd-export.zip')?.id, details: { studyInstanceUid: MR_STUDY } });
      expect(byName.get(name)?.reason).toMatch(/birth date missing/);
    }

    const studies = resources<ImagingStudy>(bundle, 'ImagingStudy');
    expect(studies).toHaveLength(1);
    const study = studies[0] as ImagingStudy;
    expect(study.identifier).toContainEqual({ system: 'urn:dicom:uid', value: `urn:oid:${MR_STUDY}` });
    expect(study.series?.map((s) => [s.uid, s.modality.code, s.instance?.length])).toEqual(
      expect.arrayContaining([
        [MR_SERIES, 'MR', 1],
        [CT_SERIES, 'CT', 1],
      ]),
    );
    expect(study.numberOfSeries).toBe(2);
    expect(tagCodes(study, ORIGIN_SYSTEM)).toEqual(['family-upload']);
    expect(tagCodes(study, UPLOAD_FLAG_SYSTEM)).toEqual(['identity-mismatch']);

    const documents = resources<DocumentReference>(bundle, 'DocumentReference');
    expect(documents).toHaveLength(1);
    const document = documents[0] as DocumentReference;
    expect(tagCodes(document, ORIGIN_SYSTEM)).toEqual(['family-upload']);
    expect(document.content[0]?.attachment).toMatchObject({ contentType: 'application/pdf', size: pdf('minimal-document.pdf').length });
    expect(validationErrors(study)).toEqual([]);
    expect(validationErrors(document)).toEqual([]);
    // Both point at the case Patient, and a Provenance says they came from the family's uploads.
    const patient = bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.fullUrl;
    expect(study.subject.reference).toBe(patient);
    expect(document.subject?.reference).toBe(patient);
    const provenance = resources<Provenance>(bundle, 'Provenance').find((p) => p.agent.some((a) => a.who?.display === 'Family uploads'));
    const urls = new Map((bundle.entry ?? []).map((e) => [e.resource, e.fullUrl]));
    expect(provenance?.target.map((t) => t.reference).sort()).toEqual([urls.get(document), urls.get(study)].sort());

    // The stored bytes are the uploaded bytes.
    const bytes = await svc.request('GET', `/api/cases/${caseId}/uploads/files/${byName.get('portal-letter.pdf')?.id ?? ''}`, { token: cm });
    expect(bytes.status).toBe(200);
    expect(Buffer.from(await bytes.arrayBuffer())).toEqual(pdf('minimal-document.pdf'));

    // The completeness report accounts for the uploads as a source.
    const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as {
      sources: { sourceId: string; resourceTypes: { resourceType: string; pulled: number; inBundle: number; balanced: boolean }[] }[];
    };
    expect(report.sources.find((s) => s.sourceId === 'family-uploads')?.resourceTypes).toEqual([
      expect.objectContaining({ resourceType: 'DocumentReference', pulled: 1, inBundle: 1, balanced: true }),
      expect.objectContaining({ resourceType: 'ImagingStudy', pulled: 1, inBundle: 1, balanced: true }),
    ]);

    // Imaging in the case: radiology review offered, not charged until the family approves it.
    const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as {
      quote: { base: number; total: number; addOns: { code: string; status: string }[] };
      timeline: { type: string; data: Record<string, unknown> }[];
    };
    expect(detail.quote.addOns).toEqual([expect.objectContaining({ code: 'radiology-review', status: 'offered' })]);
    expect(detail.quote.total).toBe(detail.quote.base);
    // Offered at the fee of the price list the service runs with, said on the timeline as a case manager's offer is.
    const fee = loadDomainData().prices.addOns.find((a) => a.code === 'radiology-review')?.fee;
    expect(detail.timeline.filter((e) => e.type === 'addon_offered').map((e) => e.data)).toEqual([expect.objectContaining({ addOn: 'radiology-review', fee })]);
    expect(detail.timeline.map((e) => e.type)).toEqual(expect.arrayContaining(['upload_received', 'upload_ingested']));
  });

  it('an upload with a truncated DICOM lists it with its reason, and the rest of the upload is still ingested', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [
      { name: 'MR_truncated.dcm', data: dicom('pydicom__MR_truncated.dcm') },
      // A DICOMDIR tree names files without extension: recognised by DICM at offset 128.
      { name: '6154', data: dicom('pydicom__dicomdirtests_77654033_CR1_6154') },
      { name: 'locked.pdf', data: pdf('libreoffice-writer-password.pdf') },
    ]);
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as UploadView;
    const { upload: done, bundle } = await ingested(caseId, uploadId);
    const byName = new Map(done.files.map((f) => [f.name, f]));
    expect(byName.get('MR_truncated.dcm')).toMatchObject({ kind: 'dicom', state: 'unparsed', reason: expect.stringMatching(/truncated file/) });
    expect(byName.get('6154')).toMatchObject({ kind: 'dicom', state: 'flagged', details: { studyInstanceUid: CR_STUDY, modality: 'CR' } });
    expect(byName.get('locked.pdf')).toMatchObject({ kind: 'pdf', state: 'flagged', reason: expect.stringMatching(/encrypted/) });
    expect(done.progress).toMatchObject({ files: 3, received: 0, unparsed: 1, flagged: 2 });

    const studies = resources<ImagingStudy>(bundle, 'ImagingStudy');
    expect(studies.map((s) => s.identifier?.[0]?.value)).toEqual([`urn:oid:${CR_STUDY}`]);
    const documents = resources<DocumentReference>(bundle, 'DocumentReference');
    expect(documents).toHaveLength(1);
    expect(tagCodes(documents[0] as DocumentReference, UPLOAD_FLAG_SYSTEM)).toEqual(['unreadable', 'encrypted']);
  });

  it('a compressed (encapsulated) DICOM whose last fragment runs past the end of the file is listed unparsed as truncated, not parsed', async () => {
    const caseId = await openCase();
    const whole = dicom('pydicom__examples_ybr_color.dcm');
    const res = await upload(caseId, [{ name: 'US-cut.dcm', data: whole.subarray(0, whole.length - 1000) }]);
    expect(res.status).toBe(202);
    const { upload: done } = await ingested(caseId, ((await res.json()) as UploadView).uploadId);
    expect(done.files).toEqual([
      expect.objectContaining({ name: 'US-cut.dcm', kind: 'dicom', state: 'unparsed', reason: expect.stringMatching(/^truncated file: Pixel Data \(7FE0,0010\) fragment 30 declares \d+ bytes but the file ends/) }),
    ]);
  });

  it('a DICOM cut before its Pixel Data is listed unparsed as truncated and counts no instance in an ImagingStudy', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [
      // Implicit VR, cut inside a value after the study and series UIDs.
      { name: 'MR-cut.dcm', data: dicom('pydicom__MR_small_implicit.dcm').subarray(0, 1500) },
      // Explicit VR, cut exactly between two elements.
      { name: 'US-head.dcm', data: dicom('pydicom__examples_rgb_color.dcm').subarray(0, 1108) },
    ]);
    expect(res.status).toBe(202);
    const { upload: done, bundle } = await ingested(caseId, ((await res.json()) as UploadView).uploadId);
    expect(done.files).toEqual(
      expect.arrayContaining(
        ['MR-cut.dcm', 'US-head.dcm'].map((name) => expect.objectContaining({ name, kind: 'dicom', state: 'unparsed', reason: expect.stringMatching(/^truncated file: /) })),
      ),
    );
    expect(resources<ImagingStudy>(bundle, 'ImagingStudy')).toEqual([]);
  });

  it('keeps a PDF that runs JavaScript when opened, flagged for review, and serves it only as an attachment', async () => {
    const made = await PDFDocument.create();
    made.addPage().drawText('Discharge letter');
    made.addJavaScript('open', 'app.launchURL("https://example.invalid/")');
    const caseId = await openCase();
    const res = await upload(caseId, [{ name: 'letter-with-script (1).pdf', data: Buffer.from(await made.save()) }]);
    expect(res.status).toBe(202);
    const { upload: done, bundle } = await ingested(caseId, ((await res.json()) as UploadView).uploadId);
    const file = done.files.find((f) => f.name === 'letter-with-script (1).pdf');
    expect(file).toMatchObject({ kind: 'pdf', state: 'flagged', reason: 'PDF holds active content (JavaScript): kept; open it only in a viewer that runs nothing' });
    const documents = resources<DocumentReference>(bundle, 'DocumentReference');
    expect(documents.map((d) => tagCodes(d, UPLOAD_FLAG_SYSTEM))).toEqual([['active-content']]);
    const served = await svc.request('GET', `/api/cases/${caseId}/uploads/files/${file?.id ?? ''}`, { token: cm });
    // RFC 8187: parentheses %-encoded too (encodeURIComponent leaves them).
    expect(served.headers.get('content-disposition')).toBe("attachment; filename*=UTF-8''letter-with-script%20%281%29.pdf");
    await served.arrayBuffer();
  });
});

describe('zip safety', () => {
  it('refuses a path-traversal entry (listed with the reason, nothing written outside) and ingests the rest', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [
      {
        name: 'evil.zip',
        data: buildZip([
          { name: '../../escaped.dcm', data: dicom('pydicom__MR_small_implicit.dcm') },
          { name: 'IMAGES/IM1', data: dicom('pydicom__MR_small_implicit.dcm') },
        ]),
      },
    ]);
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as UploadView;
    const { upload: done } = await ingested(caseId, uploadId);
    const refused = done.files.find((f) => f.name.includes('escaped'));
    expect(refused).toMatchObject({ state: 'unparsed', reason: expect.stringMatching(/^refused: /) });
    expect(done.files.find((f) => f.name === 'IMAGES/IM1')).toMatchObject({ kind: 'dicom', details: { studyInstanceUid: MR_STUDY } });
    expect(done.files.find((f) => f.name === 'evil.zip')).toMatchObject({ state: 'parsed', reason: '1 entry refused' });
    for (const dir of [svc.config.dataDir, path.dirname(svc.config.dataDir), path.join(svc.config.dataDir, 'ingest')]) {
      expect(fs.existsSync(path.join(dir, 'escaped.dcm'))).toBe(false);
    }
  });
});

describe('the ingest job is idempotent', () => {
  it('run again after dying half-way (zip extracted, files not parsed), it ends as before: no duplicate rows, one more bundle', async () => {
    const caseId = await openCase();
    const { mr, ct } = twoSeriesStudy();
    const res = await upload(caseId, [
      { name: 'cd.zip', data: buildZip([{ name: 'A/IM1', data: mr }, { name: 'A/IM2', data: ct }, { name: '/etc/passwd', data: Buffer.from('x') }]) },
    ]);
    const { uploadId } = (await res.json()) as UploadView;
    const { upload: before } = await ingested(caseId, uploadId);
    const view = (u: UploadView) => u.files.map((f) => [f.id, f.name, f.state, f.reason]);

    // As if the job had died after extracting: every stored file back to `received`, no bundle yet.
    await svc.service.db.query("UPDATE uploads SET state = 'received', reason = NULL, metadata = '{}', parsed_at = NULL WHERE upload_id = $1 AND blob_sha256 IS NOT NULL", [uploadId]);
    await svc.service.db.query('DELETE FROM case_bundles WHERE case_id = $1', [caseId]);
    await withIngestDeps(async (deps) => {
      const again = await ingestUpload(deps, uploadId);
      expect(again.version).toBe(1);
      // A third run finds nothing to do.
      expect((await ingestUpload(deps, uploadId)).version).toBeUndefined();
    });
    const after = (await uploads(caseId)).find((u) => u.uploadId === uploadId) as UploadView;
    expect(view(after)).toEqual(view(before));
    expect(after.state).toBe('ingested');
  });

  it('reads, but assembles nothing from, an upload whose case was cancelled before its ingest ran', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [{ name: 'late-letter.pdf', data: Buffer.from(await (await PDFDocument.create()).save()) }]);
    const { uploadId } = (await res.json()) as UploadView;
    await ingested(caseId, uploadId);
    // As if the ingest had not run yet when the family withdrew: files back to `received`, no bundle.
    await svc.service.db.query("UPDATE uploads SET state = 'received', reason = NULL, metadata = '{}', parsed_at = NULL WHERE upload_id = $1", [uploadId]);
    await svc.service.db.query('DELETE FROM case_bundles WHERE case_id = $1', [caseId]);
    expect((await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew.' } })).status).toBe(200);
    await withIngestDeps(async (deps) => {
      const result = await ingestUpload(deps, uploadId);
      expect(result.version).toBeUndefined();
      expect(result.counts.parsed).toBe(1);
    });
    const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM case_bundles WHERE case_id = $1', [caseId]);
    expect(rows[0]?.n).toBe(0);
  });
});

describe('an upload whose ingestion fails for good', () => {
  it('says so on its last attempt only: state failed with the reason, on the timeline, and the case managers told', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [{ name: 'letter.pdf', data: pdf('minimal-document.pdf') }]);
    const { uploadId } = (await res.json()) as UploadView;
    await ingested(caseId, uploadId);
    // As if its job had not run yet, and every assembly of this case failed (the database refusing the version).
    await svc.service.db.query("UPDATE uploads SET state = 'received', reason = NULL, metadata = '{}', parsed_at = NULL WHERE upload_id = $1", [uploadId]);
    await svc.service.db.query('DELETE FROM case_bundles WHERE case_id = $1', [caseId]);
    await svc.service.db.exec(`CREATE FUNCTION refuse_bundle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
      CREATE TRIGGER refuse_bundle BEFORE INSERT ON case_bundles FOR EACH ROW WHEN (NEW.case_id = '${caseId}') EXECUTE FUNCTION refuse_bundle();`);
    const pool = new DicomWorkerPool({ timeoutMs: 10_000 });
    try {
      const deps = {
        db: svc.service.db, mappings: loadTerminologyMappings, blobs: new BlobStore(path.join(svc.config.dataDir, 'blobs')), pool,
        workDir: path.join(svc.config.dataDir, 'ingest-test'), uploads: svc.config.uploads,
      };
      const job = { uploadId, caseId };
      await expect(runIngestJob(deps, job, { made: 0, allowed: 5 })).rejects.toThrow(/disk full/);
      const retrying = (await uploads(caseId)).find((u) => u.uploadId === uploadId) as UploadView & { failure?: string };
      expect({ state: retrying.state, failure: retrying.failure }).toEqual({ state: 'assembling', failure: undefined });
      await expect(runIngestJob(deps, job, { made: 4, allowed: 5 })).rejects.toThrow(/disk full/);
      await expect(runIngestJob(deps, job, { made: 4, allowed: 5 })).rejects.toThrow(/disk full/); // recorded once
    } finally {
      await pool.close();
      await svc.service.db.exec('DROP TRIGGER refuse_bundle ON case_bundles; DROP FUNCTION refuse_bundle();');
    }
    const failed = (await uploads(caseId)).find((u) => u.uploadId === uploadId) as UploadView & { failure?: string };
    expect({ state: failed.state, failure: failed.failure, files: failed.files.map((f) => f.state) }).toEqual({
      state: 'failed', failure: 'the ingest job failed 5 times (error)', files: ['parsed'],
    });
    const { rows } = await svc.service.db.query<{ type: string }>("SELECT type FROM case_events WHERE case_id = $1 AND type = 'upload_not_ingested'", [caseId]);
    expect(rows).toHaveLength(1);
    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.type === 'assembly.failed'),
    );
    expect(notes.filter((n) => n.type === 'assembly.failed').map((n) => n.message)).toEqual([
      `The family's upload could not be taken into the case bundle (the ingest job failed 5 times (error)); its files are kept. Once the cause is fixed, rebuild the bundle (POST /api/cases/${caseId}/bundle/rebuild).`,
    ]);
  });
});

describe('an ingest cut short by the process stopping', () => {
  it('is not recorded as failed, even on its last attempt: its DICOM threads were closed under it, the file is not at fault', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [{ name: 'mr.dcm', data: dicom('pydicom__MR_small_implicit.dcm') }]);
    const { uploadId } = (await res.json()) as UploadView;
    await ingested(caseId, uploadId);
    // As if its job had not run yet; then shutdown closes the DICOM threads while it runs.
    await svc.service.db.query("UPDATE uploads SET state = 'received', reason = NULL, metadata = '{}', parsed_at = NULL WHERE upload_id = $1", [uploadId]);
    const pool = new DicomWorkerPool({ timeoutMs: 10_000 });
    await pool.close();
    const deps = {
      db: svc.service.db, mappings: loadTerminologyMappings, blobs: new BlobStore(path.join(svc.config.dataDir, 'blobs')), pool,
      workDir: path.join(svc.config.dataDir, 'ingest-test'), uploads: svc.config.uploads,
    };
    await expect(runIngestJob(deps, { uploadId, caseId }, { made: 4, allowed: 5 })).rejects.toThrow(/worker-failed: pool closed/);
    const after = (await uploads(caseId)).find((u) => u.uploadId === uploadId) as UploadView & { failure?: string };
    expect(after.failure).toBeUndefined();
    expect(after.state).not.toBe('failed');
    const { rows } = await svc.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM case_events WHERE case_id = $1 AND type = 'upload_not_ingested'", [caseId]);
    expect(rows[0]?.n).toBe(0);
  });
});

describe('limits: 413 / 415 name the file', () => {
  const fakePdf = (bytes: number): Buffer => Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(bytes - 9, 0x20)]);

  it('a file over MAX_UPLOAD_FILE_BYTES is refused with 413 naming it, and nothing of the request is kept', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [
      { name: 'small.pdf', data: pdf('minimal-document.pdf') },
      { name: 'huge-scan.pdf', data: fakePdf(1024 * 1024 + 10) },
    ]);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await res.json()) as { detail: string; errors: { field: string; detail: string }[] };
    expect(problem.detail).toMatch(/File "huge-scan\.pdf" is larger than the limit of 1\.0 MB per file/);
    expect(problem.errors[0]).toMatchObject({ field: 'file' });
    expect(await uploads(caseId)).toEqual([]);
  });

  it('a file that takes the case past MAX_UPLOAD_CASE_BYTES is refused with 413 naming it', async () => {
    const caseId = await openCase();
    const first = await upload(caseId, [
      { name: 'a.pdf', data: fakePdf(900 * 1024) },
      { name: 'b.pdf', data: fakePdf(900 * 1024) },
      { name: 'c.pdf', data: fakePdf(900 * 1024) },
    ]);
    expect(first.status).toBe(202);
    const res = await upload(caseId, [{ name: 'one-too-many.pdf', data: fakePdf(900 * 1024) }]);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/File "one-too-many\.pdf" would take this case's uploads past their limit of 3\.0 MB/);
    expect(await uploads(caseId)).toHaveLength(1);
  });

  it('a file that is not a PDF, DICOM or zip is refused with 415 naming it; a non-multipart body with 415 naming content-type', async () => {
    const caseId = await openCase();
    const res = await upload(caseId, [{ name: 'notes.docx', data: Buffer.from('this is not a medical file') }]);
    expect(res.status).toBe(415);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/File "notes\.docx" is not a PDF, a DICOM file or a zip archive/);
    const json = await svc.request('POST', `/api/cases/${caseId}/uploads`, { token: cm, body: { file: 'x' } });
    expect(json.status).toBe(415);
    expect(((await json.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('content-type');
  });
});

describe('per-case upload token', () => {
  it('opens the upload routes of its case only', async () => {
    const caseId = await openCase();
    const other = await openCase();
    const issued = await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm });
    expect(issued.status).toBe(201);
    const { token, expiresAt } = (await issued.json()) as { token: string; expiresAt: string };
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    const res = await upload(caseId, [{ name: 'from-portal.pdf', data: pdf('minimal-document.pdf') }], token);
    expect(res.status).toBe(202);
    expect(await uploads(caseId, token)).toHaveLength(1);

    // Another case's uploads: 403. Any other route: 403 insufficient_scope (a valid token without a staff role, RFC 6750 §3.1).
    expect((await upload(other, [{ name: 'x.pdf', data: pdf('minimal-document.pdf') }], token)).status).toBe(403);
    expect((await svc.request('GET', `/api/cases/${other}/uploads`, { token })).status).toBe(403);
    // The other case's access log records the refusals, by this token (the privacy officer sees who tried).
    const admin = await svc.token('admin', 'admin-uploads');
    type Log = { items: { actor: string; route: string; status: number }[] };
    const log = await eventually(
      async () => ((await (await svc.request('GET', `/api/cases/${other}/access-log`, { token: admin })).json()) as Log).items.filter((e) => e.actor.startsWith('upload-token:')),
      (rows) => rows.length >= 2,
      10_000,
    );
    expect(log.map((e) => e.status)).toEqual([403, 403]);
    for (const route of [`/api/cases/${caseId}`, `/api/cases/${caseId}/bundle`, `/api/cases/${caseId}/uploads/files/${caseId}`]) {
      const refused = await svc.request('GET', route, { token });
      expect(refused.status).toBe(403);
      expect(refused.headers.get('www-authenticate')).toContain('insufficient_scope');
    }
    expect((await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token })).status).toBe(403);

    // Expired: 401.
    await svc.service.db.query("UPDATE upload_tokens SET expires_at = now() - interval '1 second' WHERE case_id = $1", [caseId]);
    expect((await svc.request('GET', `/api/cases/${caseId}/uploads`, { token })).status).toBe(401);
  });

  it('is listed without the token itself, and revoked at once by the case manager (written on the timeline)', async () => {
    const caseId = await openCase();
    const other = await openCase();
    const issue = async () => (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string; tokenId: string };
    const [kept, leaked] = [await issue(), await issue()];
    const listed = async () => ((await (await svc.request('GET', `/api/cases/${caseId}/upload-tokens`, { token: cm })).json()) as { items: Record<string, unknown>[] }).items;
    const before = await listed();
    expect(before.map((t) => t.tokenId).sort()).toEqual([kept.tokenId, leaked.tokenId].sort());
    expect(before.every((t) => t.active === true && typeof t.createdBy === 'string' && !('token' in t))).toBe(true);
    expect(JSON.stringify(before)).not.toContain(leaked.token);
    expect(await uploads(caseId, leaked.token)).toHaveLength(0);

    // Another case's id does not reach the token; then the revocation, once.
    expect((await svc.request('DELETE', `/api/cases/${other}/upload-tokens/${leaked.tokenId}`, { token: cm })).status).toBe(404);
    expect((await svc.request('DELETE', `/api/cases/${caseId}/upload-tokens/${leaked.tokenId}`, { token: cm })).status).toBe(204);
    expect((await svc.request('DELETE', `/api/cases/${caseId}/upload-tokens/${leaked.tokenId}`, { token: cm })).status).toBe(404);
    const refused = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: leaked.token });
    expect(refused.status).toBe(401);
    expect(await uploads(caseId, kept.token)).toHaveLength(0);
    expect((await listed()).map((t) => t.tokenId)).toEqual([kept.tokenId]);
    const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data?: { tokenId?: string } }[] };
    expect(detail.timeline.find((e) => e.type === 'upload_token_revoked')?.data).toEqual({ tokenId: leaked.tokenId });
    // The family portal cannot revoke or list.
    expect((await svc.request('GET', `/api/cases/${caseId}/upload-tokens`, { token: kept.token })).status).toBe(403);
  });

  it('ends with the case: cancelling it revokes its upload tokens at once', async () => {
    const caseId = await openCase();
    const { token } = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string };
    expect(await uploads(caseId, token)).toHaveLength(0);
    expect((await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew the request.' } })).status).toBe(200);
    expect((await svc.request('GET', `/api/cases/${caseId}/uploads`, { token })).status).toBe(401);
    const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string }[] };
    expect(detail.timeline.map((e) => e.type)).toContain('upload_tokens_revoked');
  });
});
