import type { Migration } from './index';

/**
 * `deliveries.review_code`: why a delivery waits in `needs_review`, as a code the service acts on
 * (`review_reason` stays the sentence a case manager reads). Settling a report in doubt queues again
 * the newer versions that wait on it: they were found by a phrase inside their reason, which a
 * rewording of that sentence would have silently broken. Set with the state, cleared with the
 * reason. Rows already waiting for that cause are given its code here. NULL: no coded cause.
 */
export const migration044: Migration = {
  version: 44,
  name: 'delivery-review-code',
  sql: `
ALTER TABLE deliveries ADD COLUMN review_code text;
UPDATE deliveries SET review_code = 'earlier-in-doubt'
 WHERE state = 'needs_review' AND strpos(review_reason, 'may already be in the chart at this recipient') > 0;
`,
};
