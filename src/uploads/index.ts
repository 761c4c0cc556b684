/**
 * Processing of what families upload: content sniffing, PDF inspection to DocumentReference, safe zip
 * extraction. Pure or local-file I/O only (no database, no HTTP).
 * @packageDocumentation
 */
export { sniffFileKind, SNIFF_BYTES, type FileKind } from './sniff';
export { inspectPdf } from './pdf-inspection';
export {
  documentReferenceForUpload,
  UPLOAD_RESOURCE_NAMESPACE,
  ATTACHMENT_PAGES_EXTENSION,
  ATTACHMENT_SHA256_EXTENSION,
  UPLOAD_IDENTIFIER_SYSTEM,
  type PdfInspection,
  type UploadedDocument,
} from './pdf-document';
export { extractZip, ZipLimitError, type ZipLimits, type ZipExtraction, type ExtractedFile, type RefusedEntry, type ZipLimitCode } from './zip-archive';
export { checkEntryName, type EntryNameCheck } from './zip-entry-name';
export { FAMILY_UPLOAD_TAG, ORIGIN_SYSTEM, UPLOAD_FLAG_SYSTEM, uploadFlagTag, type UploadFlagCode } from './origin';
