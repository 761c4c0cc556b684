/**
 * A PDF a family uploaded (a patient-portal export, a scanned letter) becomes a FHIR DocumentReference.
 * The PDF is inspected with pdf-lib for its page count and title (`pdf-inspection.ts`, run in the
 * PDF inspection thread: this module does not load pdf-lib). A PDF that cannot be read —
 * password-protected, truncated, damaged — is **kept and flagged**, never rejected: the family's copy may
 * be the only one, and a case manager can ask for a better one.
 *
 * @see https://hl7.org/fhir/R4/documentreference.html
 * @see https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-documentreference.html
 * @packageDocumentation
 */
import type { Attachment, Coding, DocumentReference, Extension } from 'fhir/r4';
import { uuidV5 } from '../cases/fhir-ids';
import type { ActiveContent } from './pdf-active-content';
import { EXTENSION_BASE, FAMILY_UPLOAD_TAG, uploadFlagTag } from './origin';

/** What `inspectPdf` (`pdf-inspection.ts`) found. */
export type PdfInspection =
  | {
      readonly ok: true;
      readonly encrypted: false;
      readonly pageCount: number;
      readonly title?: string;
      readonly creationDate?: string;
      /** What can act when the file is opened (`pdf-active-content.ts`); absent for a plain document. */
      readonly activeContent?: readonly ActiveContent[];
    }
  | { readonly ok: false; readonly encrypted: boolean; readonly reason: string; readonly pageCount?: number; readonly activeContent?: readonly ActiveContent[] };

/** Why a PDF holding active content is flagged (for the upload's file list). */
export function activeContentReason(active: readonly ActiveContent[]): string {
  return `PDF holds active content (${active.join(', ')}): kept; open it only in a viewer that runs nothing`;
}


/** Namespace of upload-derived resource ids (random, fixed forever). */
export const UPLOAD_RESOURCE_NAMESPACE = 'b3a4d7e2-5c1f-4e8a-9d6b-2f0c8a7e4b19';

/** The cross-version extension for R5 `Attachment.pages` (R4 has no page count). */
export const ATTACHMENT_PAGES_EXTENSION = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Attachment.pages';
/** The blob store key (SHA-256, hex) of an attachment; `Attachment.hash` is SHA-1 by definition. */
export const ATTACHMENT_SHA256_EXTENSION = `${EXTENSION_BASE}/attachment-sha256`;
/** Identifier system of upload ids. */
export const UPLOAD_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/upload';

const CATEGORY: Coding[] = [
  { system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note', display: 'Clinical Note' },
  { system: 'https://second-opinion.example.org/fhir/CodeSystem/document-category', code: 'outside-record', display: 'Outside record' },
];

/** Input of {@link documentReferenceForUpload}: what the upload route and the blob store know. */
export interface UploadedDocument {
  readonly caseId: string;
  readonly uploadId: string;
  readonly fileName: string;
  readonly contentType: string;
  readonly size: number;
  /**
   * SHA-1 of the bytes, base64 (FHIR `Attachment.hash`); omit when unknown, and `hash` is left out
   * (an empty string is not a valid FHIR base64Binary, nor any value: R4 §2.1.0.3).
   * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
   */
  readonly sha1Base64?: string;
  /** SHA-256 of the bytes, hex (the blob store key). */
  readonly sha256: string;
  /** Where the bytes can be fetched (e.g. the API's blob URL). */
  readonly blobUrl: string;
  /** {@link inspectPdf}'s verdict; omit for a file that is not a PDF. */
  readonly pdf?: PdfInspection;
  /** When the upload finished (FHIR instant). */
  readonly uploadedAt: string;
  /** e.g. `Patient/<id>` or `urn:uuid:<id>` of the case patient. */
  readonly patientReference?: string;
}

/**
 * The DocumentReference of an uploaded document: `status: current`, a US Core category plus the program's
 * `outside-record` category, type `unknown` (US Core allows it; nobody has classified the document yet),
 * the attachment by URL with size, SHA-1 `hash`, SHA-256 and page count extensions, `meta.tag`
 * `family-upload`. A PDF that could not be read carries `meta.tag` `unreadable` (and `encrypted` when it is
 * password-protected), and its `description` says why; one that holds active content, `active-content`. The id is a UUID v5 of case and upload ids, so
 * building it twice gives the same resource.
 */
export function documentReferenceForUpload(input: UploadedDocument): DocumentReference {
  const { pdf } = input;
  const tags: Coding[] = [{ ...FAMILY_UPLOAD_TAG }];
  if (pdf && !pdf.ok) {
    tags.push(uploadFlagTag('unreadable'));
    if (pdf.encrypted) tags.push(uploadFlagTag('encrypted'));
  }
  if (pdf?.activeContent && pdf.activeContent.length > 0) tags.push(uploadFlagTag('active-content'));
  const pageCount = pdf?.pageCount;
  const extension: Extension[] = [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: input.sha256 }];
  if (pageCount !== undefined && pageCount > 0) extension.push({ url: ATTACHMENT_PAGES_EXTENSION, valuePositiveInt: pageCount });
  const title = pdf?.ok && pdf.title ? pdf.title : input.fileName;
  const attachment: Attachment = {
    extension,
    contentType: input.contentType,
    url: input.blobUrl,
    size: input.size,
    ...(input.sha1Base64 ? { hash: input.sha1Base64 } : {}),
    title,
    ...(pdf?.ok && pdf.creationDate ? { creation: pdf.creationDate } : {}),
  };
  return {
    resourceType: 'DocumentReference',
    id: uuidV5(`${input.caseId}/upload/${input.uploadId}`, UPLOAD_RESOURCE_NAMESPACE),
    meta: { tag: tags },
    identifier: [{ system: UPLOAD_IDENTIFIER_SYSTEM, value: input.uploadId }],
    status: 'current',
    type: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown', display: 'Unknown' }],
      text: 'Document uploaded by the family',
    },
    category: [{ coding: CATEGORY.map((c) => ({ ...c })) }],
    ...(input.patientReference ? { subject: { reference: input.patientReference } } : {}),
    date: input.uploadedAt,
    description: pdf && !pdf.ok ? `Kept but not readable: ${pdf.reason}` : title,
    content: [{ attachment }],
  };
}
