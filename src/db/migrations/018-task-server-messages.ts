import type { Migration } from './index';

/**
 * `pull_tasks.server_messages`: what the server said about the query besides its results — the
 * issues of the OperationOutcome entries (`search.mode = outcome`) in its pages, distinct, each with
 * the number of pages that carried it (`src/pull/server-messages.ts`). Shown with the pull's progress.
 */
export const migration018: Migration = {
  version: 18,
  name: 'task-server-messages',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN server_messages jsonb NOT NULL DEFAULT '[]';
`,
};
