/**
 * Tags and code systems shared by the resources built from family uploads
 * (DocumentReference from a PDF, ImagingStudy from DICOM files).
 *
 * @see https://hl7.org/fhir/R4/resource.html#Meta (`meta.tag`, `meta.security`)
 * @packageDocumentation
 */
import type { Coding } from 'fhir/r4';

/** Code system of the program's origin tags (where a resource came from). */
export const ORIGIN_SYSTEM = 'https://second-opinion.example.org/fhir/CodeSystem/origin';

/** `meta.tag` on every resource made from something a family uploaded. */
export const FAMILY_UPLOAD_TAG: Readonly<Coding> = Object.freeze({
  system: ORIGIN_SYSTEM,
  code: 'family-upload',
  display: 'Uploaded by the family',
});

/** Code system of the program's review flags (what a case manager must look at). */
export const UPLOAD_FLAG_SYSTEM = 'https://second-opinion.example.org/fhir/CodeSystem/upload-flag';

/** The review flags an upload-derived resource can carry in `meta.tag`. */
export type UploadFlagCode = 'unreadable' | 'encrypted' | 'active-content' | 'identity-mismatch' | 'sop-instance-uid-conflict' | 'polyglot';

const FLAG_DISPLAY: Readonly<Record<UploadFlagCode, string>> = {
  unreadable: 'File kept but could not be read',
  encrypted: 'File is password-protected',
  'active-content': 'PDF holds active content (scripts, launch actions or embedded files): open it only in a viewer that runs nothing',
  'identity-mismatch': 'Patient identity in the file differs from the case patient: case-manager review',
  'sop-instance-uid-conflict': 'SOP Instance UID shared by files of different content: case-manager review',
  polyglot: 'File is both DICOM and PDF (a PDF header in its DICOM preamble): a PDF viewer would open it as a document; case-manager review',
};

/** A `meta.tag` Coding for an upload review flag. */
export function uploadFlagTag(code: UploadFlagCode): Coding {
  return { system: UPLOAD_FLAG_SYSTEM, code, display: FLAG_DISPLAY[code] };
}

/** Base of the program's own StructureDefinition (extension) URLs. */
export const EXTENSION_BASE = 'https://second-opinion.example.org/fhir/StructureDefinition';
