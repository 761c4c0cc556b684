import type { Migration } from './index';

/**
 * `pull_tasks.waiting_until`: set while a task waits for an endpoint its circuit breaker paused (the
 * time the breaker lets a probe through), cleared when the task runs again or ends. The pull's
 * progress shows it, so a case manager sees "waiting for care team B until 14:36" rather than a
 * task that looks stuck.
 */
export const migration010: Migration = {
  version: 10,
  name: 'task-waiting',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN waiting_until timestamptz;
`,
};
