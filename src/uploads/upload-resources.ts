/**
 * The assembly hook of family uploads: the case's ingested upload rows become one more source of the
 * case bundle, with origin `family-upload`, so they pass through the same normalization (origin
 * `meta.tag` and `meta.source`, references to the case Patient), de-duplication (an uploaded
 * ImagingStudy merges with a pulled one of the same StudyInstanceUID, rule `imagingstudy:study-uid`,
 * which keeps every DICOMweb Endpoint; see also `mergeImagingStudies`), Provenance (one for the
 * uploads as a source, one per merge) and completeness report as pulled records.
 *
 * Derived, never stored: the resources are rebuilt at every assembly from the rows (the bytes'
 * SHA-256, the DICOM headers and PDF inspections stored when the upload was ingested), so a rebuild
 * replays them like the raw store. A PDF becomes a DocumentReference (`documentReferenceForUpload`),
 * one per distinct content (the same file uploaded twice is one document);
 * DICOM files are grouped into one ImagingStudy per StudyInstanceUID over all the case's uploads
 * (`buildImagingStudies`), with an `identity-mismatch` tag when the files' patient differs from the
 * case patient, and a `polyglot` tag (plus `active-content`) when a file is also a PDF. Files still being
 * ingested, or unreadable DICOM, add nothing.
 * @see https://hl7.org/fhir/R4/documentreference.html
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { DocumentReference, ImagingStudy } from 'fhir/r4';
import type { AssemblyInput } from '../assembly/assembly-input';
import type { Intake } from '../cases/intake-schema';
import type { Database } from '../db/database';
import type { DicomHeader } from '../imaging/dicom-header';
import type { CasePatient } from '../imaging/identity';
import { buildImagingStudies, type DicomInstanceInput } from '../imaging/imaging-study';
import type { RawInput, SourceInfo } from '../normalize/types';
import type { UploadFlagCode } from './origin';
import { documentReferenceForUpload, type PdfInspection } from './pdf-document';
import { listCaseUploadFiles, type UploadFileRow } from './upload-repository';

/** The source id of a case's family uploads in assembly (case source ids are UUIDs: no clash). */
export const UPLOAD_SOURCE_ID = 'family-uploads';
/** Display name of the uploads source (Provenance agent, completeness report). */
export const UPLOAD_SOURCE_NAME = 'Family uploads';
/** The `Patient/<id>` the upload-derived resources point at; redirected to the case Patient by normalization. */
export const UPLOAD_PATIENT_ID = 'case-patient';

/** `meta.source` of upload-derived resources: the case's upload channel. */
export function uploadChannelUrl(caseId: string): string {
  return `urn:second-opinion:case:${caseId}:family-uploads`;
}

/** The API path that serves an uploaded file's bytes (the DocumentReference attachment URL). */
export function uploadFileUrl(caseId: string, fileId: string): string {
  return `/api/cases/${caseId}/uploads/files/${fileId}`;
}

/** What the case Patient is, for identity checks of DICOM files. */
export function casePatientOf(intake: Intake): CasePatient {
  return { family: intake.patient.name.family, given: intake.patient.name.given, birthDate: intake.patient.birthDate, ...(intake.patient.sex ? { sex: intake.patient.sex } : {}) };
}

const ingested = (row: UploadFileRow): boolean => row.state !== 'received' && row.blobSha256 !== null;

/** The DICOM header stored for a parsed file, if any. */
export function storedHeader(row: UploadFileRow): DicomHeader | undefined {
  const header = row.metadata['header'];
  return row.kind === 'dicom' && (row.state === 'parsed' || row.state === 'flagged') && typeof header === 'object' && header !== null
    ? (header as DicomHeader)
    : undefined;
}

/**
 * The ingested PDFs, one per content: the same bytes uploaded again (twice by the family, or in a zip
 * and on its own) are one document, the first upload's; the upload list still shows every file.
 * Two records of one pulled source stay two facts (`dedupe/cluster.ts`), but two uploads of
 * byte-identical files are one document sent twice.
 */
function distinctPdfs(rows: readonly UploadFileRow[]): UploadFileRow[] {
  const seen = new Set<string>();
  const out: UploadFileRow[] = [];
  for (const r of rows) {
    if (r.kind !== 'pdf' || !ingested(r) || r.blobSha256 === null || seen.has(r.blobSha256)) continue;
    seen.add(r.blobSha256);
    out.push(r);
  }
  return out;
}

/** The review flags of a DICOM file itself: a DICOM/PDF polyglot (`ingest.ts`), and the active content its PDF holds. */
function fileFlags(row: UploadFileRow): { flags?: UploadFlagCode[] } {
  if (row.metadata['polyglot'] !== true) return {};
  const pdf = row.metadata['pdf'] as PdfInspection | undefined;
  return { flags: pdf?.activeContent && pdf.activeContent.length > 0 ? ['polyglot', 'active-content'] : ['polyglot'] };
}

/** The resources the case's uploads give (pure; deterministic order: the rows' order, upload time first). */
export function uploadResources(caseId: string, intake: Intake, rows: readonly UploadFileRow[]): { documents: DocumentReference[]; studies: ImagingStudy[] } {
  const patientReference = `Patient/${UPLOAD_PATIENT_ID}`;
  const documents = distinctPdfs(rows)
    .map((r) =>
      documentReferenceForUpload({
        caseId,
        uploadId: r.id,
        fileName: r.fileName,
        contentType: 'application/pdf',
        size: r.size,
        ...(r.sha1Base64 ? { sha1Base64: r.sha1Base64 } : {}),
        sha256: r.blobSha256 ?? '',
        blobUrl: uploadFileUrl(caseId, r.id),
        ...(r.metadata['pdf'] ? { pdf: r.metadata['pdf'] as PdfInspection } : {}),
        uploadedAt: r.createdAt.toISOString(),
        patientReference,
      }),
    );
  const instances: DicomInstanceInput[] = [];
  for (const r of rows) {
    const header = storedHeader(r);
    if (header && r.blobSha256) instances.push({ header, blobSha256: r.blobSha256, fileName: r.fileName, ...fileFlags(r) });
  }
  const studies = buildImagingStudies(instances, { patientReference, idScope: caseId, casePatient: casePatientOf(intake) });
  return { documents, studies };
}

/** A raw input whose resource is a fresh JSON object (no sub-object shared with anything else), like a row of the raw store. */
function rawOf(resource: DocumentReference | ImagingStudy, fetchedAt: string): RawInput {
  const json = JSON.stringify(resource);
  return {
    sourceId: UPLOAD_SOURCE_ID,
    resourceType: resource.resourceType,
    remoteId: resource.id ?? '',
    versionId: '1',
    fetchedAt,
    sha256: createHash('sha256').update(json).digest('hex'),
    resource: JSON.parse(json) as Record<string, unknown>,
  };
}

/** The uploads as an assembly source with its raw inputs (pure); `rows` are ingested rows of the case. */
export function uploadSourceInput(caseId: string, intake: Intake, rows: readonly UploadFileRow[]): { source: SourceInfo; raw: RawInput[] } {
  const { documents, studies } = uploadResources(caseId, intake, rows);
  const times = rows.map((r) => (r.parsedAt ?? r.createdAt).getTime());
  const lastFetchedAt = new Date(Math.max(0, ...times)).toISOString();
  const source: SourceInfo = {
    sourceId: UPLOAD_SOURCE_ID,
    baseUrl: uploadChannelUrl(caseId),
    name: UPLOAD_SOURCE_NAME,
    origin: 'family-upload',
    remotePatientId: UPLOAD_PATIENT_ID,
    pullIds: [],
    lastFetchedAt,
  };
  return { source, raw: [...documents, ...studies].map((r) => rawOf(r, lastFetchedAt)) };
}

/**
 * Adds the case's family uploads to an assembly input as one more source, in place (the pulled raw
 * array is not copied), and returns it; nothing changes when the case has no ingested upload.
 */
export async function withUploads(db: Database, input: AssemblyInput): Promise<AssemblyInput> {
  const rows = (await listCaseUploadFiles(db, input.caseId)).filter(ingested);
  if (rows.length === 0) return input;
  const { source, raw } = uploadSourceInput(input.caseId, input.intake, rows);
  input.sources.push(source);
  for (const r of raw) input.built.push(r);
  return input;
}
