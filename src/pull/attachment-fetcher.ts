import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Queryable } from '../db/database';
import { recordBlob, type BlobStore, type BlobWriter } from '../blobs/blob-store';
import { requireEndpoint } from '../endpoints/endpoint-service';
import { isPermanentFhirError } from '../fhir';
import { logger } from '../log';
import type { PullWorkerDeps } from './pull-deps';
import { findSourceById } from './source-repository';

interface AttachmentRow {
  id: string;
  case_id: string;
  source_id: string;
  task_id: string;
  resource_type: string;
  remote_id: string;
  position: string;
  url: string | null;
  inline: boolean;
  content_type: string | null;
  declared_size: number | null;
  declared_sha1: string | null;
  state: 'pending' | 'fetched' | 'failed';
}

/** How the bytes compare with what the resource declared (Attachment.size, Attachment.hash). */
export type Integrity = 'verified' | 'unverified' | 'size-mismatch' | 'hash-mismatch' | 'size-and-hash-mismatch';

export function integrityOf(declared: { size: number | null; sha1: string | null }, actual: { size: number; sha1Base64: string }): Integrity {
  const sizeBad = declared.size !== null && declared.size !== actual.size;
  const hashBad = declared.sha1 !== null && declared.sha1.replace(/\s/g, '') !== actual.sha1Base64;
  if (sizeBad && hashBad) return 'size-and-hash-mismatch';
  if (sizeBad) return 'size-mismatch';
  if (hashBad) return 'hash-mismatch';
  return declared.size === null && declared.sha1 === null ? 'unverified' : 'verified';
}

/** Inline data over the size cap: a permanent failure, with the cap in the message. */
export class InlineAttachmentTooLargeError extends Error {
  readonly permanent = true;
}

/**
 * Decodes an attachment's inline base64 data (FHIR base64Binary may be line-wrapped: whitespace is
 * legal and ignored) and stores the bytes in the blob store.
 * @throws InlineAttachmentTooLargeError over `maxBytes`
 */
export async function storeInlineData(blobs: BlobStore, data: string, maxBytes: number): Promise<{ sha256: string; size: number; sha1Base64: string }> {
  const bytes = Buffer.from(data.replace(/\s+/g, ''), 'base64');
  if (bytes.length > maxBytes) throw new InlineAttachmentTooLargeError(`attachment is ${bytes.length} bytes, over the ${maxBytes}-byte cap`);
  const blob = await blobs.putBuffer(bytes);
  return { ...blob, sha1Base64: createHash('sha1').update(bytes).digest('base64') };
}

/** Reads `content[0].attachment`-style positions out of a stored resource. */
export function inlineDataAt(resource: Record<string, unknown>, position: string): string | undefined {
  if (position === 'Binary') return typeof resource.data === 'string' ? resource.data : undefined;
  let node: unknown = resource;
  for (const part of position.split('.')) {
    const m = /^(\w+)(?:\[(\d+)\])?$/.exec(part);
    if (!m || typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[m[1] ?? ''];
    if (m[2] !== undefined) node = Array.isArray(node) ? node[Number(m[2])] : undefined;
  }
  const data = (node as { data?: unknown } | undefined)?.data;
  return typeof data === 'string' ? data : undefined;
}

async function markFetched(db: Queryable, id: string, blob: { sha256: string; size: number; sha1Base64: string }, integrity: Integrity): Promise<void> {
  await db.query(
    `UPDATE attachments SET state = 'fetched', blob_sha256 = $2, size = $3, integrity = $4, sha1_base64 = $5, error = NULL,
       attempts = attempts + 1, updated_at = now() WHERE id = $1`,
    [id, blob.sha256, blob.size, integrity, blob.sha1Base64],
  );
}

async function markFailed(db: Queryable, id: string, error: string, final: boolean): Promise<void> {
  await db.query(
    `UPDATE attachments SET state = CASE WHEN $3 THEN 'failed' ELSE state END, error = $2, attempts = attempts + 1, updated_at = now() WHERE id = $1`,
    [id, error.slice(0, 500), final],
  );
}

async function commitWriter(writer: BlobWriter): Promise<{ sha256: string; sha1Base64: string; size: number }> {
  if (!writer.writableFinished) await once(writer, 'finish');
  return writer.commit();
}

/**
 * Fetches one attachment into the blob store and records how it compares with what the resource
 * declared (a mismatch is recorded, not ignored). Inline data is decoded from the raw resource;
 * URLs are fetched from the source's endpoint only (same origin, size cap). Idempotent: a fetched
 * attachment is not fetched again.
 */
export async function fetchAttachment(deps: PullWorkerDeps, attachmentId: string, isLastAttempt: boolean): Promise<'fetched' | 'failed' | 'skipped'> {
  const { rows } = await deps.db.query<AttachmentRow>('SELECT * FROM attachments WHERE id = $1', [attachmentId]);
  const row = rows[0];
  if (!row || row.state === 'fetched') return 'skipped';
  const declared = { size: row.declared_size, sha1: row.declared_sha1 };
  try {
    if (row.inline) {
      const raw = await deps.db.query<{ resource: Record<string, unknown> }>(
        `SELECT resource FROM raw_resources WHERE case_id = $1 AND source_id = $2 AND resource_type = $3 AND remote_id = $4
         ORDER BY fetched_at DESC LIMIT 1`,
        [row.case_id, row.source_id, row.resource_type, row.remote_id],
      );
      const data = raw.rows[0] ? inlineDataAt(raw.rows[0].resource, row.position) : undefined;
      if (data === undefined) throw new Error('inline data not found in the stored resource');
      const stored = await storeInlineData(deps.blobs, data, deps.maxAttachmentBytes);
      await recordBlob(deps.db, { sha256: stored.sha256, size: stored.size, contentType: row.content_type ?? undefined });
      await markFetched(deps.db, row.id, stored, integrityOf(declared, stored));
      return 'fetched';
    }
    const source = await findSourceById(deps.db, row.source_id);
    if (!source || !row.url) throw Object.assign(new Error('attachment has no URL or source'), { permanent: true });
    const endpoint = await requireEndpoint(deps.db, source.endpointId);
    const client = deps.clients.forEndpoint(endpoint, deps.secrets);
    const writer = deps.blobs.createWriter();
    try {
      const url = new URL(row.url, endpoint.baseUrl.endsWith('/') ? endpoint.baseUrl : `${endpoint.baseUrl}/`).toString();
      const result = await client.fetchBinaryTo(url, writer, { maxBytes: deps.maxAttachmentBytes, accept: row.content_type ?? '*/*' });
      const blob = await commitWriter(writer);
      await recordBlob(deps.db, { sha256: blob.sha256, size: blob.size, contentType: result.contentType });
      await markFetched(deps.db, row.id, blob, integrityOf(declared, blob));
      return 'fetched';
    } catch (err) {
      writer.abort();
      throw err;
    }
  } catch (err) {
    const permanent = isPermanentFhirError(err) || (err as { permanent?: boolean }).permanent === true;
    await markFailed(deps.db, row.id, err instanceof Error ? err.message : 'error', permanent || isLastAttempt);
    logger.warn('attachment not fetched', { caseId: row.case_id, sourceId: row.source_id, resourceType: row.resource_type, errorName: err instanceof Error ? err.name : 'error' });
    if (permanent) return 'failed';
    throw err;
  }
}
