import type { Migration } from './index';

/**
 * `audit_log.disclosed_case_ids`: the cases an answer about several cases disclosed (a case list
 * shows each child's name and birth date), recorded on the request's row before it is answered
 * (`recordDisclosedCases`, src/http/audit-trail.ts). Each of those cases' access log
 * (`GET /api/cases/:id/access-log`, HIPAA accounting of access) then shows the read, served by the
 * GIN index. Ids only, no PHI. NULL on the rows of requests about one case (`case_id`) or none, and
 * on rows written before.
 */
export const migration041: Migration = {
  version: 41,
  name: 'audit-disclosed-cases',
  sql: `
ALTER TABLE audit_log ADD COLUMN disclosed_case_ids uuid[];
CREATE INDEX audit_log_disclosed_cases_idx ON audit_log USING gin (disclosed_case_ids);
`,
};
