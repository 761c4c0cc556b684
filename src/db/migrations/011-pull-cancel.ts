import type { Migration } from './index';

/**
 * A record pull can be cancelled (`POST /api/cases/:id/pulls/:pullId/cancel`, or the case cancelled,
 * closed or found ineligible): the pull and its unfinished tasks end `cancelled`, with who cancelled
 * it and why. What was pulled before stays in the raw store (raw is never deleted by a cancel).
 */
export const migration011: Migration = {
  version: 11,
  name: 'pull-cancel',
  sql: `
ALTER TABLE pulls DROP CONSTRAINT pulls_state_check;
ALTER TABLE pulls ADD CONSTRAINT pulls_state_check CHECK (state IN ('queued', 'running', 'complete', 'partial', 'failed', 'cancelled'));
ALTER TABLE pulls ADD COLUMN cancelled_by text, ADD COLUMN cancel_reason text;
ALTER TABLE pull_tasks DROP CONSTRAINT pull_tasks_state_check;
ALTER TABLE pull_tasks ADD CONSTRAINT pull_tasks_state_check CHECK (state IN ('queued', 'running', 'complete', 'failed', 'cancelled'));
`,
};
