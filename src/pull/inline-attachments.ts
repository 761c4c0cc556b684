import type { BlobStore } from '../blobs/blob-store';
import { InlineAttachmentTooLargeError, integrityOf, storeInlineData } from './attachment-fetcher';
import type { PageAttachment } from './pull-repository';

/** Inline attachments stored at once (each is a small file write and fsync). */
const CONCURRENCY = 8;

/**
 * Stores the inline attachments of a page (base64 `data` in the resource) in the blob store before
 * the page commits, so they are recorded `fetched` with it and need no job, no second read of the
 * raw resource and no per-attachment queries; an attachment over the size cap is recorded `failed`
 * with the reason. URL attachments are returned as they are (fetched later by the attachment queue).
 * Blobs are content-addressed: storing one again (a page committed by another run) is a no-op.
 */
export async function storeInlineAttachments(blobs: BlobStore, attachments: readonly PageAttachment[], maxBytes: number): Promise<PageAttachment[]> {
  const out = [...attachments];
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < out.length) {
      const i = next++;
      const a = out[i];
      if (!a || a.data === undefined) continue;
      try {
        const stored = await storeInlineData(blobs, a.data, maxBytes);
        const integrity = integrityOf({ size: a.size ?? null, sha1: a.sha1 ?? null }, stored);
        out[i] = { ...a, stored: { state: 'fetched', ...stored, integrity } };
      } catch (err) {
        if (!(err instanceof InlineAttachmentTooLargeError)) throw err;
        out[i] = { ...a, stored: { state: 'failed', error: err.message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, out.length) }, work));
  return out;
}
