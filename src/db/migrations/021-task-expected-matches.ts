import type { Migration } from './index';

/**
 * `pull_tasks.expected_matches`: how many matches the server said its query has (`Bundle.total` of
 * a searchset page, https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.total; the latest page
 * that carried it wins), null when it did not say. Pull progress shows it beside what is stored, so
 * a long pull reads "12,000 of about 40,000".
 */
export const migration021: Migration = {
  version: 21,
  name: 'task-expected-matches',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN expected_matches integer;
`,
};
