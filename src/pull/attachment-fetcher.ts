import { once } from 'node:events';
import type { Queryable } from '../db/database';
import { recordBlob, type BlobWriter } from '../blobs/blob-store';
import { requireEndpoint } from '../endpoints/endpoint-service';
import { isPermanentFhirError, RequestNotSentError } from '../fhir';
import { logger } from '../log';
import { integrityOf, type Integrity } from './attachment-integrity';
import { fetchInlineAttachments } from './inline-attachments';
import { pausedMessage, waitsFor, type JobRun } from './job-run';
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

/**
 * Records the attachment fetched, only while it is still `pending`: two jobs can hold the same
 * attachment (its job added again after Redis lost track of it), and the one that records second would
 * count the attempt twice, or turn the other's outcome into its own.
 * @returns whether it was recorded (false: fetched or failed meanwhile, by another job, the pull's
 *   cancel or its end; it stays as it is)
 */
async function markFetched(db: Queryable, id: string, blob: { sha256: string; size: number; sha1Base64: string }, integrity: Integrity): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE attachments SET state = 'fetched', blob_sha256 = $2, size = $3, integrity = $4, sha1_base64 = $5, error = NULL,
       attempts = attempts + 1, updated_at = now() WHERE id = $1 AND state = 'pending'`,
    [id, blob.sha256, blob.size, integrity, blob.sha1Base64],
  );
  return rowCount > 0;
}

/** Records a failed try (final: the attachment `failed`), only while it is still `pending`, as {@link markFetched}. */
async function markFailed(db: Queryable, id: string, error: string, final: boolean): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE attachments SET state = CASE WHEN $3 THEN 'failed' ELSE state END, error = $2, attempts = attempts + 1, updated_at = now()
      WHERE id = $1 AND state = 'pending'`,
    [id, error.slice(0, 500), final],
  );
  return rowCount > 0;
}

async function commitWriter(writer: BlobWriter): Promise<{ sha256: string; sha1Base64: string; size: number }> {
  if (!writer.writableFinished) await once(writer, 'finish');
  return writer.commit();
}

/**
 * Fetches one attachment into the blob store and records how it compares with what the resource
 * declared (a mismatch is recorded, not ignored). Inline data goes through the batch path
 * (inline-attachments.ts); URLs are fetched from the source's endpoint only (same origin, size cap). Idempotent: only a
 * `pending` attachment is fetched (a retry of the pull sets failed ones pending again).
 *
 * When `deps.stopping` fires before the download's request is sent (it waits for its endpoint's
 * limiter slot, token or a retry's backoff), the request is withdrawn (`RequestNotSentError`) and the
 * run ends `handed-back`: nothing recorded, the attachment left `pending` (no attempt counted, its
 * error as it was) for the job's next run to fetch (queues/fetch-attachment.ts). A download already
 * under way is not cut (it could not resume): it is waited for.
 */
export async function fetchAttachment(deps: PullWorkerDeps, attachmentId: string, run: JobRun): Promise<'fetched' | 'failed' | 'skipped' | 'handed-back'> {
  const { isLastAttempt } = run;
  const { rows } = await deps.db.query<AttachmentRow>('SELECT * FROM attachments WHERE id = $1', [attachmentId]);
  const row = rows[0];
  // Fetched already, or failed for good (its last attempt, or its pull cancelled): nothing to do.
  if (!row || row.state !== 'pending') return 'skipped';
  if (row.inline) {
    // Inline data is stored by the batch path (one row here), which records its own outcome.
    const done = await fetchInlineAttachments(deps, [row.id], isLastAttempt);
    return done.fetched > 0 ? 'fetched' : done.failed > 0 ? 'failed' : 'skipped';
  }
  const declared = { size: row.declared_size, sha1: row.declared_sha1 };
  try {
    const source = await findSourceById(deps.db, row.source_id);
    if (!source || !row.url) throw Object.assign(new Error('attachment has no URL or source'), { permanent: true });
    const attachmentUrl = row.url;
    // An endpoint edited while the attachment waits for its turn: fetched with the new client, no retry spent.
    const { blob, contentType } = await deps.clients.withCurrentClient(() => requireEndpoint(deps.db, source.endpointId), deps.secrets, async (client, endpoint) => {
      const writer = deps.blobs.createWriter();
      try {
        const url = new URL(attachmentUrl, endpoint.baseUrl.endsWith('/') ? endpoint.baseUrl : `${endpoint.baseUrl}/`).toString();
        const result = await client.fetchBinaryTo(url, writer, {
          maxBytes: deps.maxAttachmentBytes,
          accept: row.content_type ?? '*/*',
          stopBeforeSend: deps.stopping,
        });
        return { blob: await commitWriter(writer), contentType: result.contentType };
      } catch (err) {
        writer.abort();
        throw err;
      }
    });
    await recordBlob(deps.db, { sha256: blob.sha256, size: blob.size, contentType });
    return (await markFetched(deps.db, row.id, blob, integrityOf(declared, blob))) ? 'fetched' : 'skipped';
  } catch (err) {
    // Withdrawn unsent as the process stops: not a failed try, nothing to record.
    if (err instanceof RequestNotSentError) return 'handed-back';
    const permanent = isPermanentFhirError(err) || (err as { permanent?: boolean }).permanent === true;
    const paused = waitsFor(run, err);
    const message = paused ? pausedMessage(err.retryAt) : err instanceof Error ? err.message : 'error';
    const recorded = await markFailed(deps.db, row.id, message, !paused && (permanent || isLastAttempt));
    logger.warn('attachment not fetched', { caseId: row.case_id, sourceId: row.source_id, resourceType: row.resource_type, errorName: err instanceof Error ? err.name : 'error' });
    // Not pending any more (another job recorded it meanwhile): nothing left for this job, nor a retry of it.
    if (!recorded) return 'skipped';
    if (permanent) return 'failed';
    throw err;
  }
}
