import type { Migration } from './index';

/**
 * `pull_tasks.remote_patient_id`: the patient at the source a task was planned for. When a case
 * manager finds that a source was matched to the wrong child and chooses another patient there, the
 * records pulled for the first one stay in the raw store (raw is never rewritten) but assembly leaves
 * them out, with the reason, instead of mixing two children's records in one case bundle. Tasks from
 * before this migration have NULL (taken as the source's current patient).
 */
export const migration012: Migration = {
  version: 12,
  name: 'task-patient',
  sql: `
ALTER TABLE pull_tasks ADD COLUMN remote_patient_id text;
`,
};
