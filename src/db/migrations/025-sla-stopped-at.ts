import type { Migration } from './index';

/**
 * `cases.sla_stopped_at`: when the SLA clock stopped — the case left the statuses it runs in
 * (`records_complete`, `assigned`, `in_review`; paused in `awaiting_information`) for a report
 * signed, delivered, closed, cancelled… NULL while it runs (or has not started). A case's SLA is
 * judged at that instant: a report signed on time is not overdue a month later. Cases stopped
 * before this migration take their last transition into their status (else their last update).
 */
export const migration025: Migration = {
  version: 25,
  name: 'sla-stopped-at',
  sql: `
ALTER TABLE cases ADD COLUMN sla_stopped_at timestamptz;
UPDATE cases SET sla_stopped_at = COALESCE(
    (SELECT max(e.at) FROM case_events e WHERE e.case_id = cases.id AND e.type = 'transition' AND e.to_status = cases.status),
    updated_at),
  sla_target_due = NULL, sla_limit_due = NULL
WHERE records_complete_at IS NOT NULL
  AND status NOT IN ('records_complete', 'assigned', 'in_review', 'awaiting_information', 'collecting_records', 'submitted');
`,
};
