/**
 * The assembly hook of uploads, without a database: upload rows → a `family-upload` source → the same
 * normalize + dedupe as pulled records. An uploaded study merges with a pulled study of the same
 * StudyInstanceUID and the pulled study's DICOMweb Endpoint is kept.
 */
import type { Bundle, DocumentReference, Endpoint, ImagingStudy, Patient } from 'fhir/r4';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { buildComposition } from '../../src/normalize/composition';
import { dedupe } from '../../src/normalize/dedupe';
import { normalize } from '../../src/normalize/normalize';
import { ORIGIN_SYSTEM } from '../../src/normalize/origin';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { uploadFlagTag } from '../../src/uploads/origin';
import type { UploadFileRow } from '../../src/uploads/upload-repository';
import { UPLOAD_SOURCE_ID, uploadSourceInput } from '../../src/uploads/upload-resources';
import { readCorpus } from '../imaging/support';
import { rawFromBundle, sourceInfo } from '../normalize/normalize-support';
import { sampleIntake } from '../support/intake';

const CASE_ID = '6f1c1b3e-0a4d-4c55-9d1e-2b7a8c9d0e1f';
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const MR_SERIES = '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457';

function dicomRow(id: string, file: string): UploadFileRow {
  const parsed = parseDicomHeader(readCorpus(file));
  if (!parsed.ok) throw new Error(parsed.reason);
  return {
    id,
    caseId: CASE_ID,
    uploadId: '0d6c7b8a-1111-4222-8333-944455556666',
    parentId: null,
    position: 0,
    fileName: file,
    kind: 'dicom',
    contentType: null,
    blobSha256: 'a'.repeat(64),
    sha1Base64: null,
    size: 1,
    state: 'flagged',
    reason: 'identity review',
    metadata: { header: parsed.header },
    origin: 'family-upload',
    uploadedBy: 'upload-token:x',
    createdAt: new Date('2026-11-02T10:00:00Z'),
    parsedAt: new Date('2026-11-02T10:00:05Z'),
  };
}

/** A care team's record of the same MR study: one more series, and the DICOMweb Endpoint of its PACS. */
function pulledBundle(): Bundle {
  const patient: Patient = { resourceType: 'Patient', id: 'p1', name: [{ family: 'Marrowvale', given: ['Zinnia'] }], birthDate: '2017-03-14' };
  const endpoint: Endpoint = {
    resourceType: 'Endpoint',
    id: 'pacs',
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' },
    payloadType: [{ text: 'DICOM' }],
    address: 'https://pacs.care-team-a.example.org/dicomweb',
  };
  const study: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id: 'mr-1',
    status: 'available',
    subject: { reference: 'Patient/p1' },
    identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${MR_STUDY}` }],
    endpoint: [{ reference: 'Endpoint/pacs' }],
    series: [{ uid: '1.2.3.999', modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'MR' }, numberOfInstances: 12 }],
  };
  return { resourceType: 'Bundle', type: 'searchset', entry: [patient, endpoint, study].map((resource) => ({ resource })) };
}

describe('uploads as an assembly source', () => {
  it('merge with the pulled study of the same StudyInstanceUID: series unioned, the DICOMweb Endpoint kept, both origins tagged', () => {
    const intake = sampleIntake();
    const uploads = uploadSourceInput(CASE_ID, intake, [dicomRow('11111111-1111-4111-8111-111111111111', 'pydicom__MR_small_implicit.dcm')]);
    expect(uploads.source).toMatchObject({ sourceId: UPLOAD_SOURCE_ID, origin: 'family-upload' });
    const pulled = sourceInfo('a0000000-0000-4000-8000-000000000001', 'https://care-team-a.example.org/fhir', { remotePatientId: 'p1' });
    const normalized = normalize({
      caseId: CASE_ID,
      intake,
      sources: [pulled, uploads.source],
      raw: [...rawFromBundle(pulledBundle(), pulled.sourceId), ...uploads.raw],
      mappings: loadTerminologyMappings(),
    });
    expect(normalized.leftOut).toEqual([]);
    const deduped = dedupe(normalized.resources);
    const studies = deduped.resources.filter((r) => r.resource.resourceType === 'ImagingStudy').map((r) => r.resource as ImagingStudy);
    expect(studies).toHaveLength(1);
    const study = studies[0] as ImagingStudy;
    expect(deduped.merges).toEqual([expect.objectContaining({ rule: 'imagingstudy:study-uid' })]);
    const endpointUrl = deduped.resources.find((r) => r.resource.resourceType === 'Endpoint')?.fullUrl;
    expect(study.endpoint).toEqual([expect.objectContaining({ reference: endpointUrl })]);
    expect(study.series?.map((s) => s.uid).sort()).toEqual(['1.2.3.999', MR_SERIES].sort());
    expect((study.meta?.tag ?? []).filter((t) => t.system === ORIGIN_SYSTEM).map((t) => t.code).sort()).toEqual(['family-upload', 'local-ehr']);
    expect(study.subject.reference).toBe(normalized.casePatient.id ? `urn:uuid:${normalized.casePatient.id}` : undefined);
  });

  it("a CD naming another patient (a sibling's) reads, in the case record, as images to check before use, without the other name", () => {
    const intake = sampleIntake();
    // The corpus MR names CompressedSamples^MR1 (ID 4MR1), not the case's child.
    const uploads = uploadSourceInput(CASE_ID, intake, [dicomRow('88888888-8888-4888-8888-888888888888', 'pydicom__MR_small_implicit.dcm')]);
    const normalized = normalize({ caseId: CASE_ID, intake, sources: [uploads.source], raw: uploads.raw, mappings: loadTerminologyMappings() });
    const deduped = dedupe(normalized.resources);
    const study = deduped.resources.find((r) => r.resource.resourceType === 'ImagingStudy')?.resource as ImagingStudy;
    expect(study.meta?.tag).toEqual(expect.arrayContaining([uploadFlagTag('identity-mismatch')]));
    const subject = `urn:uuid:${normalized.casePatient.id ?? ''}`;
    const build = () => buildComposition({ subject, resources: deduped.resources, options: { bundleId: 'b-1', timestamp: '2026-11-02T15:00:00Z' }, sources: [uploads.source] });
    const imaging = build().entry.resource.section?.find((s) => s.code?.coding?.[0]?.code === '18748-4');
    const div = imaging?.text?.div ?? '';
    expect(div).toContain('CAUTION: these images name a patient other than the case patient; check them before use — ');
    expect(div).not.toMatch(/CompressedSamples|MR1|4MR1/);
    // Deterministic: the same narrative every time.
    expect(build().entry.resource.section?.find((s) => s.code?.coding?.[0]?.code === '18748-4')?.text?.div).toBe(div);
  });

  it('gives nothing for a file that was not read, and is deterministic', () => {
    const row = dicomRow('22222222-2222-4222-8222-222222222222', 'pydicom__MR_small_implicit.dcm');
    const unread: UploadFileRow = { ...row, state: 'unparsed', metadata: {} };
    expect(uploadSourceInput(CASE_ID, sampleIntake(), [unread]).raw).toEqual([]);
    expect(uploadSourceInput(CASE_ID, sampleIntake(), [row])).toEqual(uploadSourceInput(CASE_ID, sampleIntake(), [row]));
  });

  it('gives one DocumentReference per distinct PDF: the same file uploaded again is the first upload\'s document', () => {
    const pdf = (id: string, fileName: string, sha: string, at: string): UploadFileRow => ({
      ...dicomRow(id, 'pydicom__MR_small_implicit.dcm'),
      fileName,
      kind: 'pdf',
      blobSha256: sha.repeat(64),
      sha1Base64: 'c2FtZS1maWxlLWhhc2g=',
      state: 'parsed',
      reason: null,
      metadata: {},
      createdAt: new Date(at),
    });
    const first = pdf('33333333-3333-4333-8333-333333333333', 'mri-report.pdf', 'b', '2026-11-02T10:00:00Z');
    const again = pdf('44444444-4444-4444-8444-444444444444', 'mri-report (1).pdf', 'b', '2026-11-03T09:00:00Z');
    const other = pdf('55555555-5555-4555-8555-555555555555', 'neurology-letter.pdf', 'c', '2026-11-03T09:00:00Z');
    const docs = uploadSourceInput(CASE_ID, sampleIntake(), [first, again, other]).raw.filter((r) => r.resourceType === 'DocumentReference');
    expect(docs.map((d) => JSON.stringify(d.resource))).toEqual([
      expect.stringContaining(first.id),
      expect.stringContaining(other.id),
    ]);
    expect(JSON.stringify(docs)).not.toContain(again.id);
  });

  it('never writes an empty Attachment.hash: a PDF whose SHA-1 is unknown has none, one with it has it', () => {
    const row = (id: string, sha1Base64: string | null): UploadFileRow => ({
      ...dicomRow(id, 'pydicom__MR_small_implicit.dcm'),
      fileName: 'scan-archive.pdf',
      kind: 'pdf',
      blobSha256: id.slice(0, 1).repeat(64),
      sha1Base64,
      // What ingest says of a PDF over MAX_PDF_INSPECT_BYTES: never read, so no SHA-1 from readPdf.
      state: 'flagged',
      reason: 'PDF too large to inspect; kept as received',
      metadata: {},
    });
    const unknown = row('66666666-6666-4666-8666-666666666666', null);
    const known = row('77777777-7777-4777-8777-777777777777', 'c2FtZS1maWxlLWhhc2g=');
    const attachments = uploadSourceInput(CASE_ID, sampleIntake(), [unknown, known])
      .raw.filter((r) => r.resourceType === 'DocumentReference')
      .map((r) => (r.resource as unknown as DocumentReference).content[0]?.attachment);
    expect(attachments).toHaveLength(2);
    expect(attachments[0]).not.toHaveProperty('hash');
    expect(attachments[0]).toMatchObject({ contentType: 'application/pdf', size: 1 });
    expect(attachments[1]).toMatchObject({ hash: 'c2FtZS1maWxlLWhhc2g=' });
  });
});
