import type { Migration } from './index';

/**
 * `pull_tasks.not_granted`: the task asked nothing because the EHR's token scope did not grant its
 * types (left out by the plan, or its first page refused 403 `forbidden`/`security`:
 * `src/pull/not-granted.ts`). Until now that was recognised by its server message (code `forbidden`,
 * no page), and the case record read the types back out of the message's text: the message is for
 * people, the flag is what the service acts on (the next re-pull's bounds, the sections a source was
 * not asked for). The types are the task's own (`resource_type`, or an `$everything` stream's
 * `_type`). Tasks already recorded so are flagged here.
 */
export const migration045: Migration = {
  version: 45,
  name: 'pull-task-not-granted',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN not_granted boolean NOT NULL DEFAULT false;
UPDATE pull_tasks SET not_granted = true
 WHERE pages = 0 AND server_messages @> '[{"code": "forbidden"}]'::jsonb;
`,
};
