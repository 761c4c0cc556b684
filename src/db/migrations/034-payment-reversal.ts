import type { Migration } from './index';

/**
 * A payment recorded in error is voided, a payment given back to the family is refunded: either way
 * it stays on the ledger (who, when, why, and for a refund the processor's refund reference) and no
 * longer counts toward the quote. Set once, all together.
 */
export const migration034: Migration = {
  version: 34,
  name: 'payment-reversal',
  sql: `
ALTER TABLE payments ADD COLUMN reversal_kind text CHECK (reversal_kind IN ('void', 'refund'));
ALTER TABLE payments ADD COLUMN reversal_reason text;
ALTER TABLE payments ADD COLUMN reversed_by text;
ALTER TABLE payments ADD COLUMN reversed_at timestamptz;
ALTER TABLE payments ADD COLUMN refund_reference text;
ALTER TABLE payments ADD CONSTRAINT payments_reversal_whole
  CHECK ((reversal_kind IS NULL) = (reversed_at IS NULL) AND (reversal_kind IS NULL) = (reversed_by IS NULL) AND (reversal_kind IS NULL) = (reversal_reason IS NULL)
         AND (refund_reference IS NULL OR reversal_kind = 'refund'));
`,
};
