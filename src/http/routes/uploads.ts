import fs from 'node:fs';
import { pipeline } from 'node:stream';
import { z } from 'zod';
import { BlobIntegrityError, verifyingStream, type BlobStore } from '../../blobs/blob-store';
import type { Config } from '../../config';
import { findCase } from '../../db/case-repository';
import type { Database } from '../../db/database';
import { findUploadFile } from '../../uploads/upload-repository';
import { listUploads, receiveUpload } from '../../uploads/upload-service';
import { issueUploadToken, listUploadTokens, revokeUploadToken, uploadTokenAuth } from '../../uploads/upload-tokens';
import { caseUploadBytes } from '../../uploads/upload-repository';
import { answeredNotModified } from '../conditional-get';
import { replayedHeader } from '../idempotency-key';
import { entityTag } from '../entity-tags';
import { conflict, HttpProblem, notFound } from '../problem';
import { errorFields, logger } from '../../log';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, uuidParam } from './params';

/** What the upload routes need from the service. */
export interface UploadRouteDeps {
  readonly db: Database;
  readonly config: Config;
  readonly blobs: BlobStore;
  /** Queues the ingest of an upload (queue `ingest-upload`). */
  readonly uploadIngest: { enqueue(job: { uploadId: string; caseId: string }): Promise<void> };
}

const FileParams = CaseParams.extend({ fileId: uuidParam('File id must be a UUID') });
const TokenParams = CaseParams.extend({ tokenId: uuidParam('Token id must be a UUID') });
type TokenParams = z.infer<typeof TokenParams>;
type NoQuery = Record<string, never>;

const CONTENT_TYPES: Readonly<Record<string, string>> = { pdf: 'application/pdf', dicom: 'application/dicom', zip: 'application/zip' };
/** The file name extension of each kind found by content. */
const EXTENSIONS: Readonly<Record<string, string>> = { pdf: '.pdf', dicom: '.dcm', zip: '.zip' };

/**
 * The family's file name, ending in the extension of the kind its content was found to be: a DICOM
 * file named `report.pdf` (one a PDF viewer would also open: a DICOM/PDF polyglot) is served as
 * `report.pdf.dcm`, so the browser or desktop that saves it opens it as what it was judged to be. A
 * kind without an extension (unknown) keeps its name; it is served as `application/octet-stream`.
 */
function servedFileName(fileName: string, kind: string): string {
  const ext = EXTENSIONS[kind];
  return ext === undefined || fileName.toLowerCase().endsWith(ext) ? fileName : `${fileName}${ext}`;
}

/**
 * Family uploads: PDFs, DICOM Part 10 files and zips of CD exports, streamed to the blob store and
 * ingested in the background (queue `ingest-upload`). A family portal may use a per-case upload
 * token (from `POST …/upload-token`) on the two `…/uploads` routes and `POST …/transfer-request` (transfer.ts), and nowhere else.
 */
export function uploadRoutes(deps: UploadRouteDeps): AnyRoute[] {
  const uploadToken = uploadTokenAuth(() => deps.db);
  const serviceDeps = () => ({
    db: deps.db,
    blobs: deps.blobs,
    uploads: deps.config.uploads,
    enqueueIngest: (job: { uploadId: string; caseId: string }) => deps.uploadIngest.enqueue(job),
  });
  return [
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/upload-token',
      tag: 'uploads',
      summary: "Issue a short-lived upload token for a family portal: it opens this case's upload routes only",
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      responses: {
        201: { description: '{token, tokenId, caseId, expiresAt}; the token is shown only once' },
        404: { description: 'No such case' },
        409: { description: 'The case is cancelled or ineligible: its portal access ended with it' },
      },
      handler: async ({ params, principal }) => {
        const record = await findCase(deps.db, params.id);
        if (!record) throw notFound(`Case ${params.id}`);
        const issued = await issueUploadToken(deps.db, params.id, principal.sub, deps.config.uploads.tokenTtlSeconds);
        if (!issued) {
          const status = (await findCase(deps.db, params.id))?.status ?? record.status;
          throw conflict(`Case ${params.id} is ${status}: its portal access ended with it, so no upload token is issued.`);
        }
        return { status: 201, body: issued };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/upload-tokens',
      tag: 'uploads',
      summary: "The case's upload tokens (never the tokens themselves): who issued each, when, until when, and whether it still works",
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: '`{items}`, newest first' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => {
        if (!(await findCase(deps.db, params.id))) throw notFound(`Case ${params.id}`);
        return { status: 200, body: { items: await listUploadTokens(deps.db, params.id) } };
      },
    }),
    defineRoute<undefined, NoQuery, TokenParams>({
      method: 'delete',
      path: '/api/cases/:id/upload-tokens/:tokenId',
      tag: 'uploads',
      summary: 'Revoke an upload token at once (a leaked link, a portal session to end); written on the timeline',
      roles: ['case_manager', 'admin'],
      params: TokenParams,
      responses: { 204: { description: 'Revoked: the token answers 401 from now on' }, 404: { description: 'No such token for this case' } },
      handler: async ({ params, principal }) => {
        const revoked = await revokeUploadToken(deps.db, params.id, params.tokenId, { sub: principal.sub, ...(principal.roles[0] ? { role: principal.roles[0] } : {}) });
        if (!revoked) throw notFound(`Upload token ${params.tokenId} of case ${params.id}`);
        return { status: 204 };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/uploads',
      tag: 'uploads',
      summary: 'Upload files (multipart/form-data): PDFs, DICOM Part 10 files, zips of CD exports; 202, ingested in the background',
      roles: ['case_manager', 'admin'],
      scopedToken: uploadToken,
      params: CaseParams,
      streamBody: {
        contentType: 'multipart/form-data',
        description:
          'One part per file, each with a filename (any field name); a part that carries a file without one is refused (400 naming the part). ' +
          'Kinds are judged by content: PDF, DICOM Part 10 (DICM at offset 128), zip. ' +
          'Send an Idempotency-Key header to make a resend answer the upload already stored (header Idempotent-Replayed: true).',
      },
      responses: {
        202: { description: 'Stored; ingest queued. The upload with its files (state received)' },
        400: { description: 'Empty or malformed upload, or a part carrying a file without a filename; the file or part is named' },
        409: { description: 'The case takes no more uploads' },
        413: { description: 'A file over MAX_UPLOAD_FILE_BYTES, or the case over MAX_UPLOAD_CASE_BYTES; the file is named' },
        415: { description: 'Not multipart/form-data, or a file that is not a PDF, DICOM or zip; the file is named' },
        503: { description: 'A file could not be stored right now (our disk full or failing): nothing was kept; send it again later' },
      },
      handler: async ({ params, principal, req }) => {
        const { upload, replayed } = await receiveUpload(serviceDeps(), params.id, req, principal);
        return {
          status: 202,
          body: upload,
          headers: { Location: `/api/cases/${params.id}/uploads`, ...replayedHeader(replayed) },
        };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/uploads',
      tag: 'uploads',
      summary: "The case's uploads: per upload its progress, per file its kind, state (received, parsed, unparsed, flagged) and reason",
      roles: ['case_manager', 'admin', 'specialist'],
      scopedToken: uploadToken,
      params: CaseParams,
      responses: { 200: { description: '{items, bytes, maxBytes}' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => {
        if (!(await findCase(deps.db, params.id))) throw notFound(`Case ${params.id}`);
        const [items, bytes] = await Promise.all([listUploads(deps.db, params.id), caseUploadBytes(deps.db, params.id)]);
        return { status: 200, body: { items, bytes, maxBytes: deps.config.uploads.maxCaseBytes } };
      },
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof FileParams>>({
      method: 'get',
      path: '/api/cases/:id/uploads/files/:fileId',
      tag: 'uploads',
      summary: 'The bytes of an uploaded file exactly as received (the URL of upload DocumentReference attachments)',
      roles: ['specialist', 'case_manager', 'admin'],
      params: FileParams,
      responses: {
        200: { description: 'The file; `ETag` is its SHA-256', contentType: 'application/octet-stream' },
        304: { description: '`If-None-Match` named this file: the client has it, no body' },
        404: { description: 'No such file' },
      },
      handler: async ({ params, req, res }) => {
        const file = await findUploadFile(deps.db, params.id, params.fileId);
        if (!file?.blobSha256) throw notFound(`File ${params.fileId} of case ${params.id}`);
        const etag = entityTag(file.blobSha256, false);
        if (answeredNotModified(req, res, etag)) return;
        const stream = await openStoredFile(deps.blobs, { caseId: params.id, fileId: params.fileId, sha256: file.blobSha256 });
        res.status(200);
        res.setHeader('Content-Type', CONTENT_TYPES[file.kind] ?? 'application/octet-stream');
        res.setHeader('Content-Length', String(file.size));
        res.setHeader('ETag', etag);
        res.setHeader('Content-Disposition', `attachment; filename*=UTF-8''${rfc8187Value(servedFileName(file.fileName, file.kind))}`);
        // A read failing mid-way ends the response (the client sees a cut body, not a hang); so does a
        // stored file whose bytes no longer hash to its recorded SHA-256 (checked as they stream, the
        // last chunk held until then): the bytes are never answered whole under the strong ETag.
        pipeline(stream, verifyingStream(file.blobSha256), res, (err) => {
          if (!err || res.writableFinished) return;
          if (err instanceof BlobIntegrityError) {
            logger.error('uploaded file damaged in the blob store: its bytes do not match the recorded SHA-256; download cut short', {
              caseId: params.id,
              fileId: params.fileId,
              sha256: file.blobSha256,
              actualSha256: err.actual,
            });
          } else {
            logger.error('upload file read failed mid-way', { caseId: params.id, fileId: params.fileId, ...errorFields(err) });
          }
        });
      },
    }),
  ] as unknown as AnyRoute[];
}

/**
 * The stored bytes of an uploaded file, opened for reading. Bytes the database says are there but the
 * blob store lacks (a data folder not mounted, a restore that missed it) are this service's fault: a
 * 500 that says so, and an error in the log with the file's id and hash (never its name: a family's
 * file name may name the child).
 */
async function openStoredFile(blobs: BlobStore, file: { caseId: string; fileId: string; sha256: string }): Promise<fs.ReadStream> {
  const stream = fs.createReadStream(blobs.pathOf(file.sha256));
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return stream;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    logger.error('uploaded file missing from the blob store', { ...file, ...errorFields(err) });
    if (code === 'ENOENT') {
      throw new HttpProblem(500, 'Stored file missing', `The bytes of file ${file.fileId} are missing from the blob store (SHA-256 ${file.sha256}); the upload is recorded but its file cannot be read. An operator must restore the blob store.`);
    }
    throw err;
  }
}

/**
 * A file name as the value of `filename*` (RFC 8187 §3.2.1: `attr-char` or %-encoded UTF-8 octets):
 * `encodeURIComponent` leaves `'`, `(`, `)` and `*` as they are, which `attr-char` does not allow
 * (a name such as `scan (1).pdf` broke the header for strict clients).
 * @see https://www.rfc-editor.org/rfc/rfc8187#section-3.2.1
 */
function rfc8187Value(name: string): string {
  return encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
