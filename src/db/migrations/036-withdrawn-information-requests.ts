import type { Migration } from './index';

/**
 * An information request of a case that ends (cancelled, closed, found ineligible) is `withdrawn`:
 * nothing more is asked of the family, and it no longer shows as open. Requests left open by cases
 * that had already ended are withdrawn here, in the same words.
 */
export const migration036: Migration = {
  version: 36,
  name: 'withdrawn-information-requests',
  sql: `
ALTER TABLE information_requests DROP CONSTRAINT information_requests_state_check;
ALTER TABLE information_requests ADD CONSTRAINT information_requests_state_check CHECK (state IN ('open', 'answered', 'withdrawn'));
UPDATE information_requests r
   SET state = 'withdrawn', answered_by = 'system:migration-036', answered_at = now(),
       answer = 'The case had ended (' || c.status || '): the request is withdrawn.'
  FROM cases c
 WHERE c.id = r.case_id AND r.state = 'open' AND c.status IN ('cancelled', 'closed', 'ineligible');
`,
};
