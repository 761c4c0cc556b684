import type { Migration } from './index';

/**
 * A source can be removed from a case (the wrong care team was added): `removed`, with when, by whom
 * and why. Its raw records stay (raw is never deleted) and are left out of the bundle with the
 * reason; the same endpoint can be added to the case again as a new source, so the one-source-per-
 * endpoint rule now counts only sources not removed.
 */
export const migration013: Migration = {
  version: 13,
  name: 'source-removal',
  sql: `
ALTER TABLE case_sources DROP CONSTRAINT case_sources_state_check;
ALTER TABLE case_sources ADD CONSTRAINT case_sources_state_check CHECK (state IN ('resolved', 'needs_review', 'removed'));
ALTER TABLE case_sources ADD COLUMN removed_at timestamptz, ADD COLUMN removed_by text, ADD COLUMN removed_reason text;
DROP INDEX case_sources_one_per_endpoint;
CREATE UNIQUE INDEX case_sources_one_per_endpoint ON case_sources (case_id, endpoint_id) WHERE state <> 'removed';
`,
};
