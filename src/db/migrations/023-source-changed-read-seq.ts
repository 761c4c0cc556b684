import type { Migration } from './index';

/**
 * `case_sources.changed_read_seq`: the place in the order of assembly reads (`assembly_read_seq`) of
 * the last change that takes a source's records out of the bundle (the source removed, or pointed at
 * another child). A bundle version read before it may still hold those records (see
 * `src/assembly/source-changes.ts`). NULL: no such change.
 */
export const migration023: Migration = {
  version: 23,
  name: 'source-changed-read-seq',
  sql: `
ALTER TABLE case_sources ADD COLUMN changed_read_seq bigint;
`,
};
