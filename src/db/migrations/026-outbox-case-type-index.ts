import type { Migration } from './index';

/**
 * Outbox rows are kept once processed (notifications and webhook deliveries point at them), so the
 * table grows with the service's life: a once-per-case check (`recordEventOnce`: has this case had
 * this event for this key?) reads it by case and type.
 */
export const migration026: Migration = {
  version: 26,
  name: 'outbox-case-type-index',
  sql: `
CREATE INDEX outbox_case_type_idx ON outbox (case_id, type);
`,
};
