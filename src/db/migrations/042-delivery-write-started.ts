import type { Migration } from './index';

/**
 * `deliveries.write_started_at`: when a write of the delivery's report may first have been sent to
 * the recipient, committed right before its first create request (`markWriteStarted`). A delivery
 * with it and no DiagnosticReport id recorded is in doubt: the EHR may hold the report though its
 * answer was lost. A later version to the same recipient then looks it up there by identifier before
 * deciding its own status (`amended`, replacing it, when found); such a delivery still writing is
 * never superseded or cancelled under it (a newer version waits for it); a cancelled case with one
 * tells the case managers (`delivery.in_doubt`). NULL on rows written before (nothing is known), and
 * cleared once a later version's look-up found nothing at the recipient.
 */
export const migration042: Migration = {
  version: 42,
  name: 'delivery-write-started',
  sql: `
ALTER TABLE deliveries ADD COLUMN write_started_at timestamptz;
`,
};
