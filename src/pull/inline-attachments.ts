import { createHash } from 'node:crypto';
import type { Queryable } from '../db/database';
import { logger } from '../log';
import type { BlobStore } from '../blobs/blob-store';
import { integrityOf, type Integrity } from './attachment-integrity';
import { inlineDataDigest } from './attachments';
import type { PullWorkerDeps } from './pull-deps';

/** Inline attachments written at once (each is a small file write and fsync). */
const CONCURRENCY = 8;

/** Inline data over the size cap: a permanent failure, with the cap in the message. */
class InlineAttachmentTooLargeError extends Error {
  readonly permanent = true;
}

/**
 * Decodes an attachment's inline base64 data (FHIR base64Binary may be line-wrapped: whitespace is
 * legal and ignored) and stores the bytes in the blob store.
 * @throws InlineAttachmentTooLargeError over `maxBytes`
 */
async function storeInlineData(blobs: BlobStore, data: string, maxBytes: number): Promise<{ sha256: string; size: number; sha1Base64: string }> {
  const bytes = Buffer.from(data.replace(/\s+/g, ''), 'base64');
  if (bytes.length > maxBytes) throw new InlineAttachmentTooLargeError(`attachment is ${bytes.length} bytes, over the ${maxBytes}-byte cap`);
  const blob = await blobs.putBuffer(bytes);
  return { ...blob, sha1Base64: createHash('sha1').update(bytes).digest('base64') };
}

/** Reads `content[0].attachment`-style positions out of a stored resource. */
function inlineDataAt(resource: Record<string, unknown>, position: string): string | undefined {
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

interface InlineRow {
  id: string;
  case_id: string;
  source_id: string;
  resource_type: string;
  remote_id: string;
  position: string;
  /** The digest of the data the row was found with (`inlineDataDigest`); null for rows stored before migration 027 that it could not compute. */
  data_sha256: string | null;
  content_type: string | null;
  declared_size: number | null;
  declared_sha1: string | null;
}

type Outcome =
  | { readonly id: string; readonly ok: true; readonly sha256: string; readonly size: number; readonly sha1Base64: string; readonly integrity: Integrity; readonly contentType: string | null }
  | { readonly id: string; readonly ok: false; readonly error: string; readonly final: boolean };

/** The stored versions of the rows' resources, newest first, keyed `source|type|id`. */
async function versionsOf(db: Queryable, rows: readonly InlineRow[]): Promise<Map<string, Record<string, unknown>[]>> {
  const keys = [...new Map(rows.map((r) => [`${r.case_id}|${r.source_id}|${r.resource_type}|${r.remote_id}`, r])).values()];
  const { rows: found } = await db.query<{ k: string; resource: Record<string, unknown> }>(
    `SELECT r.source_id || '|' || r.resource_type || '|' || r.remote_id AS k, r.resource
       FROM jsonb_to_recordset($1::jsonb) AS k(c uuid, s uuid, t text, i text)
       JOIN raw_resources r ON r.case_id = k.c AND r.source_id = k.s AND r.resource_type = k.t AND r.remote_id = k.i
      ORDER BY r.case_id, r.source_id, r.resource_type, r.remote_id, r.fetched_at DESC, r.version_id DESC`,
    [JSON.stringify(keys.map((r) => ({ c: r.case_id, s: r.source_id, t: r.resource_type, i: r.remote_id })))],
  );
  const versions = new Map<string, Record<string, unknown>[]>();
  for (const f of found) {
    const list = versions.get(f.k);
    if (list) list.push(f.resource);
    else versions.set(f.k, [f.resource]);
  }
  return versions;
}

/**
 * The inline data a row stands for: at its position in the newest stored version whose data there is
 * the data the row was found with (its digest), so a row found in an older version is not filled with
 * a newer version's other data. A row without a digest (stored before migration 027) takes the newest
 * version holding data at its position, as before.
 */
function inlineDataOf(row: InlineRow, versions: readonly Record<string, unknown>[]): string | undefined {
  for (const resource of versions) {
    const data = inlineDataAt(resource, row.position);
    if (data !== undefined && (row.data_sha256 === null || inlineDataDigest(data) === row.data_sha256)) return data;
  }
  return undefined;
}

/** What storing inline attachments needs of the worker's dependencies. */
export type InlineAttachmentDeps = Pick<PullWorkerDeps, 'db' | 'blobs' | 'maxAttachmentBytes'>;

async function storeOne(deps: InlineAttachmentDeps, row: InlineRow, versions: readonly Record<string, unknown>[], isLastAttempt: boolean): Promise<Outcome> {
  const data = inlineDataOf(row, versions);
  if (data === undefined) return { id: row.id, ok: false, error: 'inline data not found in the stored resource', final: isLastAttempt };
  try {
    const stored = await storeInlineData(deps.blobs, data, deps.maxAttachmentBytes);
    const integrity = integrityOf({ size: row.declared_size, sha1: row.declared_sha1 }, stored);
    return { id: row.id, ok: true, ...stored, integrity, contentType: row.content_type };
  } catch (err) {
    if (err instanceof InlineAttachmentTooLargeError) return { id: row.id, ok: false, error: err.message, final: true };
    return { id: row.id, ok: false, error: err instanceof Error ? err.message : 'error', final: isLastAttempt };
  }
}

/**
 * Records the outcomes in one statement: new blobs, fetched rows, failed rows (final or not). Only rows
 * still `pending` are recorded: two jobs can hold the same rows (a batch queued again, after Redis lost
 * it, with other members, so another job id), and the one that records second would count the attempt
 * twice, or fail a row the other fetched. Under READ COMMITTED the second UPDATE waits for the first's
 * row lock and then finds the row no longer pending.
 * @returns the ids of the rows recorded
 */
async function record(db: Queryable, outcomes: readonly Outcome[]): Promise<Set<string>> {
  const fetched = outcomes.filter((o): o is Extract<Outcome, { ok: true }> => o.ok);
  const failed = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
  const { rows } = await db.query<{ id: string }>(
    `WITH b AS (
       INSERT INTO blobs (sha256, size, content_type)
       SELECT DISTINCT ON (x.b) x.b, x.z, x.ct FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, b text, z bigint, ct text, ig text, s1 text)
       ON CONFLICT (sha256) DO NOTHING
     ), f AS (
       UPDATE attachments a SET state = 'fetched', blob_sha256 = x.b, size = x.z, integrity = x.ig, sha1_base64 = x.s1, error = NULL,
         attempts = a.attempts + 1, updated_at = now()
       FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, b text, z bigint, ct text, ig text, s1 text) WHERE a.id = x.id AND a.state = 'pending'
       RETURNING a.id
     ), e AS (
       UPDATE attachments a SET state = CASE WHEN x.final THEN 'failed' ELSE a.state END, error = x.er, attempts = a.attempts + 1, updated_at = now()
       FROM jsonb_to_recordset($2::jsonb) AS x(id uuid, er text, final boolean) WHERE a.id = x.id AND a.state = 'pending'
       RETURNING a.id
     )
     SELECT id::text FROM f UNION ALL SELECT id::text FROM e`,
    [
      JSON.stringify(fetched.map((o) => ({ id: o.id, b: o.sha256, z: o.size, ct: o.contentType, ig: o.integrity, s1: o.sha1Base64 }))),
      JSON.stringify(failed.map((o) => ({ id: o.id, er: o.error.slice(0, 500), final: o.final }))),
    ],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * Fetches a batch of inline attachments (base64 `data` inside pulled resources, e.g. the hundreds
 * of small documents of one page) in one job: the rows and their stored resources (every version:
 * each row's data is taken from the version it was found in) are read in two queries, the decoded
 * bytes written to the blob store (a few at once) and checked against the declared size and hash, and
 * every outcome recorded in one statement. Over the size cap is a
 * permanent failure with the cap in the message; any other failure is recorded and the job throws,
 * so the queue retries it (fetched rows are skipped then). Idempotent: fetched rows are not redone, and
 * a row another job recorded meanwhile is left as that job recorded it.
 * @returns counts of this run (the outcomes it recorded)
 */
export async function fetchInlineAttachments(
  deps: InlineAttachmentDeps,
  attachmentIds: readonly string[],
  isLastAttempt: boolean,
): Promise<{ fetched: number; failed: number }> {
  const { rows } = await deps.db.query<InlineRow>(
    `SELECT id, case_id, source_id, resource_type, remote_id, position, data_sha256, content_type, declared_size, declared_sha1
       FROM attachments WHERE id = ANY($1::uuid[]) AND inline AND state = 'pending'`,
    [attachmentIds],
  );
  if (rows.length === 0) return { fetched: 0, failed: 0 };
  const versions = await versionsOf(deps.db, rows);
  const outcomes = new Array<Outcome>(rows.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < rows.length) {
      const i = next++;
      const row = rows[i] as InlineRow;
      outcomes[i] = await storeOne(deps, row, versions.get(`${row.source_id}|${row.resource_type}|${row.remote_id}`) ?? [], isLastAttempt);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, lane));
  // Counted and retried: only the outcomes recorded (a row another job recorded first is its).
  const recorded = await record(deps.db, outcomes);
  const mine = outcomes.filter((o) => recorded.has(o.id));
  const failed = mine.filter((o) => !o.ok);
  if (failed.length > 0) {
    logger.warn('inline attachments not stored', { caseId: rows[0]?.case_id, counts: { failed: failed.length } });
    const retryable = failed.filter((o) => !o.ok && !o.final);
    if (retryable.length > 0) throw new Error(`${retryable.length} inline attachment(s) not stored; retrying`);
  }
  return { fetched: mine.length - failed.length, failed: failed.length };
}
