import type { Migration } from './index';

/**
 * `case_bundles.read_seq`: when, in the order of all assemblies, the assembly that stored a version
 * began reading the raw store (`nextval('assembly_read_seq')`, taken before its first read).
 *
 * Two assemblies of one case may run at once (a pull's, an upload's, a source change's, a rebuild).
 * The one that began reading later saw every change the other saw, and maybe more (a source removed,
 * new raw rows); if it stores its version first, the other's must not become the latest version on
 * top of it. A version is stored only while no version with a later `read_seq` exists for the case;
 * otherwise the assembly reads again (`assemble.ts`). NULL for versions stored before this migration.
 */
export const migration017: Migration = {
  version: 17,
  name: 'bundle-read-sequence',
  sql: `
CREATE SEQUENCE assembly_read_seq;
ALTER TABLE case_bundles ADD COLUMN read_seq bigint;
`,
};
