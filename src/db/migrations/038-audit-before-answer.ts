import type { Migration } from './index';

/**
 * `audit_log.status` may be NULL: an access is put on record before it is answered (the row is
 * written before the route's handler runs, `src/http/audit-trail.ts`) and the answer's status is
 * added once it is sent. A row left without one is an access whose answer was never logged (the
 * service stopped, or the write failed, after it had begun answering): it stays on record.
 */
export const migration038: Migration = {
  version: 38,
  name: 'audit-before-answer',
  sql: `
ALTER TABLE audit_log ALTER COLUMN status DROP NOT NULL;
`,
};
