import type { Migration } from './index';

/**
 * Whose processor references must be unique. A check number is the payer's (two families may both
 * pay with check 1001): unique per case. Other references are the processor's: unique per method
 * here, and the card methods (`card`, `hsa_fsa_card`) share one processor, which the payment
 * service checks under a lock (the same charge recorded under both would be counted twice). Every
 * row already satisfied the old (method, reference) index, so both new ones hold on existing data.
 */
export const migration029: Migration = {
  version: 29,
  name: 'payment-reference-spaces',
  sql: `
DROP INDEX payments_reference_idx;
CREATE UNIQUE INDEX payments_reference_idx ON payments (method, processor_reference) WHERE method <> 'check';
CREATE UNIQUE INDEX payments_check_number_idx ON payments (case_id, processor_reference) WHERE method = 'check';
`,
};
