import type { Migration } from './index';

/**
 * A voided payment was recorded in error (the processor never took that money, or not for this case
 * or amount): its processor reference no longer stands for a payment, so the charge can be recorded
 * again as it should have been. The uniqueness of migration 029 now holds among payments not voided;
 * a refunded one keeps its reference (that charge happened).
 */
export const migration035: Migration = {
  version: 35,
  name: 'voided-payment-reference',
  sql: `
DROP INDEX payments_reference_idx;
DROP INDEX payments_check_number_idx;
CREATE UNIQUE INDEX payments_reference_idx ON payments (method, processor_reference)
  WHERE method <> 'check' AND reversal_kind IS DISTINCT FROM 'void';
CREATE UNIQUE INDEX payments_check_number_idx ON payments (case_id, processor_reference)
  WHERE method = 'check' AND reversal_kind IS DISTINCT FROM 'void';
`,
};
