import type { Migration } from './index';

/**
 * `cases.sla_stopped_at` again, as the service now keeps it: the clock stops the first time the case
 * leaves its statuses after records were (last) complete — the first signature, or the end of the
 * case — and a correction after signing does not start it again (`transitionCase`). Migration 025
 * took the last transition into the case's current status: a case signed on 5 March and closed on
 * 1 April was judged at 1 April (limit missed); a case being corrected when the service was
 * upgraded ran its clock again with due dates long past. Both get the first stop, and no due dates.
 */
export const migration030: Migration = {
  version: 30,
  name: 'sla-stop-at-first-signature',
  sql: `
UPDATE cases c SET sla_stopped_at = s.stopped, sla_target_due = NULL, sla_limit_due = NULL
FROM (
  SELECT e.case_id, min(e.at) AS stopped
  FROM case_events e JOIN cases k ON k.id = e.case_id
  WHERE e.type = 'transition'
    AND e.from_status IN ('records_complete', 'assigned', 'in_review', 'awaiting_information')
    AND e.to_status NOT IN ('records_complete', 'assigned', 'in_review', 'awaiting_information')
    AND k.records_complete_at IS NOT NULL AND e.at >= k.records_complete_at
  GROUP BY e.case_id
) s
WHERE c.id = s.case_id;
`,
};
