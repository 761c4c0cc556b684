import type { Migration } from './index';

/**
 * `audit_log.bundle_version` and `report_version`: which version of the case record (bundle) or of the
 * signed report an answer served — so the access log shows, for instance, which records a specialist
 * opened before signing. NULL for answers that serve neither.
 */
export const migration016: Migration = {
  version: 16,
  name: 'audit-served-version',
  sql: `
ALTER TABLE audit_log ADD COLUMN bundle_version integer;
ALTER TABLE audit_log ADD COLUMN report_version integer;
`,
};
