import type { Migration } from './index';

/**
 * `pull_tasks.asked_types`: the resource types a task's query asks for, written when the task is
 * inserted (`typesAskedBy` in src/pull/not-granted.ts: its type, or an `$everything` stream's
 * `_type`, or `every type` without one). The case record's "not asked for" sections
 * (`notGrantedTypesBySource`) read them from here instead of deriving them again in SQL from
 * `resource_type` and `request_params`, which had to be kept in step with the TypeScript rule and
 * differed from it for an `$everything` task without `_type`. Tasks already recorded get the same
 * rule once, here.
 */
export const migration046: Migration = {
  version: 46,
  name: 'pull-task-asked-types',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN asked_types text[];
UPDATE pull_tasks SET asked_types = CASE
  WHEN resource_type <> '*' THEN ARRAY[resource_type]
  WHEN request_params ? '_type' THEN array_remove(string_to_array(request_params->>'_type', ','), '')
  ELSE ARRAY['every type'] END;
ALTER TABLE pull_tasks ALTER COLUMN asked_types SET NOT NULL;
`,
};
