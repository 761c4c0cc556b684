import type { Migration } from './index';

/**
 * Case bundles: every assembly is a new version, derived from the raw store (never the other way
 * round), with the report that accounts for every pulled resource.
 */
export const migration003: Migration = {
  version: 3,
  name: 'case-bundles',
  sql: `
CREATE TABLE case_bundles (
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  version integer NOT NULL,
  bundle_id text NOT NULL,
  -- json, not jsonb: the document is served exactly as assembled (key order kept).
  bundle json NOT NULL,
  report jsonb NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  trigger text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (case_id, version)
);

-- SHA-1 of a fetched attachment (base64, as FHIR Attachment.hash): fills the hash of URL
-- attachments in the bundle and lets de-duplication compare documents by content.
ALTER TABLE attachments ADD COLUMN sha1_base64 text;
`,
};
