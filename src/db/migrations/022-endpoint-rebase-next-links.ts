import type { Migration } from './index';

/**
 * `endpoints.rebase_next_links`: follow a searchset's `next` links that name another origin on the
 * endpoint's own origin (an EHR behind a reverse proxy that publishes its internal address). Off by
 * default: such links are refused (see `src/fhir/url-guard.ts`).
 */
export const migration022: Migration = {
  version: 22,
  name: 'endpoint-rebase-next-links',
  sql: `
ALTER TABLE endpoints ADD COLUMN rebase_next_links boolean NOT NULL DEFAULT false;
`,
};
