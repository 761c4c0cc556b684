import type { Migration } from './index';

/**
 * `pull_tasks.waiting_until`: set while a task waits for an endpoint its circuit breaker paused (the
 * time the breaker lets a probe through), cleared when the task runs again or ends. The pull's
 * progress shows it, so a case manager sees "waiting for care team B until 14:36" rather than a
 * task that looks stuck. And an index of the unfinished tasks, which `/metrics` counts by state.
 */
export const migration010: Migration = {
  version: 10,
  name: 'task-waiting',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN waiting_until timestamptz;
-- /metrics counts unfinished tasks at every scrape: only those, however many finished ones there are.
CREATE INDEX pull_tasks_unfinished ON pull_tasks (state) WHERE state IN ('queued', 'running');
`,
};
