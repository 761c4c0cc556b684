import type { Migration } from './index';

/**
 * `pull_tasks.server_time`: the EHR's own time when it answered the query's first page (the searchset
 * Bundle's `meta.lastUpdated`, https://hl7.org/fhir/R4/resource-definitions.html#Meta.lastUpdated, or
 * the response's HTTP `Date`, https://www.rfc-editor.org/rfc/rfc9110#field.date: the earlier), null
 * when it gave neither. The next incremental pull of the query asks for what changed since then by
 * the EHR's clock, not ours (see `lastCompletedQueries`), so a skew between the two clocks cannot hide
 * records updated in between.
 */
export const migration032: Migration = {
  version: 32,
  name: 'task-server-time',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN server_time timestamptz;
`,
};
