import type { Migration } from './index';
import { lz4WhereAvailable } from './lz4';

/**
 * Case bundles stored as the parts of their JSON text instead of one `json` value.
 *
 * Joining ~100 parts into one `json` value made PostgreSQL re-parse (`json_in`) and compress the
 * whole ~100 MB document serially, after the assembly had finished with it (≈1.5 s of a 4 s
 * assembly of 50,000 resources). Each part is now its own row, stored (and compressed) while the
 * assembly serialises the next one. The parts, concatenated in `n` order, are the exact text
 * `JSON.stringify(bundle)` gave, so the document is still served as assembled (key order kept).
 *
 * Versions written before keep their `bundle` (json) and have no parts; new versions have
 * `bundle` NULL. Parts go with their version (and case) on delete.
 *
 * LZ4 for the parts where the server has it (as migration 004 does for the raw store); PGlite and
 * servers built without LZ4 keep pglz.
 */
export const migration008: Migration = {
  version: 8,
  name: 'case-bundle-parts',
  sql: `
ALTER TABLE case_bundles ALTER COLUMN bundle DROP NOT NULL;

CREATE TABLE case_bundle_parts (
  case_id uuid NOT NULL,
  version integer NOT NULL,
  -- Order of the part in the text (0, 1, …).
  n integer NOT NULL,
  part text NOT NULL,
  PRIMARY KEY (case_id, version, n),
  FOREIGN KEY (case_id, version) REFERENCES case_bundles (case_id, version) ON DELETE CASCADE
);

${lz4WhereAvailable('case_bundle_parts', 'part')}
`,
};
