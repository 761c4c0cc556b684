import type { Migration } from './index';

/**
 * `opinion_versions.bundle_version`: the case bundle version that was the case record when the
 * opinion version was signed — what the specialist's opinion rests on (printed on the report, shown by
 * the API). NULL for versions signed before this column, or on a case never assembled.
 */
export const migration015: Migration = {
  version: 15,
  name: 'opinion-records',
  sql: `
ALTER TABLE opinion_versions ADD COLUMN bundle_version integer;
ALTER TABLE opinion_versions ADD CONSTRAINT opinion_versions_bundle_fk
  FOREIGN KEY (case_id, bundle_version) REFERENCES case_bundles (case_id, version);
`,
};
