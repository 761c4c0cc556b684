/**
 * Imaging from family uploads: DICOM Part 10 headers (dicom-parser, never pixel data) to FHIR R4
 * ImagingStudy, identity review, merge with pulled studies, and worker-thread parsing with a time limit.
 * @packageDocumentation
 */
export { parseDicomHeader, parseDicomPrefix, MAX_INFLATED_BYTES, type DicomHeader, type DicomParseResult, type DicomFailureCode, type ReadAt } from './dicom-header';
export { parseDicomFileSync, parseDicomBuffer, DEFAULT_HEAD_BYTES } from './dicom-file';
export { hashAndParseDicomFileSync, HASH_CHUNK_BYTES, type HashedDicomFile } from './dicom-file-hash';
export { DicomWorkerPool, parseDicomInWorker, defaultWorkerSource, type DicomWorkerOptions, type DicomInput } from './dicom-worker-pool';
export type { WorkerSource } from '../util/worker-source';
export { decoderFor, isKnownCharacterSet } from './dicom-charset';
export { TRANSFER_SYNTAXES } from './dicom-dictionary';
export {
  buildImagingStudies,
  reviewStudyIdentities,
  imagingStudyId,
  modalityCoding,
  DICOM_DCM_SYSTEM,
  DICOM_UID_SYSTEM,
  NUMBER_OF_FRAMES_EXTENSION,
  UPLOAD_BLOB_EXTENSION,
  type DicomInstanceInput,
  type BuildImagingStudiesOptions,
  type StudyIdentityReview,
} from './imaging-study';
export { checkIdentity, foldName, type CasePatient, type IdentityCheck, type IdentityFlag } from './identity';
export { mergeImagingStudies, studyInstanceUidOf, type ImagingStudyMerge, type ImagingStudyMergeResult } from './merge-imaging-studies';
export { ingestDicomFiles, storeFileAsBlob, hashFile, type DicomFileToIngest, type IngestedDicomFile, type IngestOptions } from './dicom-ingest';
export { dicomDateToFhir, dicomDateTimeToFhir, parsePersonName } from './dicom-values';
export { bodySiteCoding } from './body-part';
