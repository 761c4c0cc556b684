import type { Migration } from './index';

/**
 * `opinion_drafts.revision`: bumped by every save of the draft. `GET …/opinion` sends it as the
 * draft's `ETag`, and a `PUT …/opinion` with `If-Match` is refused (412) when the draft was saved
 * again since it was read (a second tab, another device): a medical opinion is never overwritten
 * with an older text unnoticed.
 */
export const migration019: Migration = {
  version: 19,
  name: 'draft-revision',
  sql: `
ALTER TABLE opinion_drafts ADD COLUMN revision integer NOT NULL DEFAULT 1;
`,
};
