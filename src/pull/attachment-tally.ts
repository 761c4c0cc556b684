/** Attachments of a group (a pull task, or a source and type) by state, and integrity problems. */
export interface AttachmentTally {
  fetched: number;
  failed: number;
  pending: number;
  /** Fetched with a size or hash that differs from what the resource declared. */
  integrityProblems: number;
}

export const emptyAttachmentTally = (): AttachmentTally => ({ fetched: 0, failed: 0, pending: 0, integrityProblems: 0 });

/** Adds `n` attachments in `state` (anything not fetched or failed is pending) with their integrity verdict. */
export function addToAttachmentTally(tally: AttachmentTally, state: string, integrity: string | null, n = 1): void {
  if (state === 'fetched') tally.fetched += n;
  else if (state === 'failed') tally.failed += n;
  else tally.pending += n;
  if (integrity?.endsWith('mismatch')) tally.integrityProblems += n;
}
