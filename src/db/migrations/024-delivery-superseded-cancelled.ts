import type { Migration } from './index';

/**
 * Two ends of a delivery besides delivered and failed, neither ever sent:
 * - `superseded`: a newer signed version goes to the same recipient (an older version landing after
 *   it would stand in the chart as the current report);
 * - `cancelled`: the case was cancelled (or found ineligible) first (the family withdrew: nothing of
 *   the case is written into the child's chart any more).
 */
export const migration024: Migration = {
  version: 24,
  name: 'delivery-superseded-cancelled',
  sql: `
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
  CHECK (state IN ('queued', 'sending', 'delivered', 'needs_review', 'failed', 'superseded', 'cancelled'));
`,
};
