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
  bundle jsonb NOT NULL,
  report jsonb NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  trigger text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (case_id, version)
);
`,
};
