import type { Migration } from './index';

/**
 * `pull_tasks.included`: `Type/id` of the distinct resources the query's current run brought as
 * `_include`d (https://hl7.org/fhir/R4/search.html#include, `search.mode = include`) and counted in its
 * `resources` and `type_counts`. A resource included again on a later page is not counted again
 * (src/pull/included-resources.ts); a query that starts over empties it with its other counters.
 * Tasks stored before keep `[]` (their counts stay as they were counted).
 */
export const migration039: Migration = {
  version: 39,
  name: 'task-included',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN included jsonb NOT NULL DEFAULT '[]'::jsonb;
`,
};
