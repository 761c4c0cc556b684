import type { Migration } from './index';

/**
 * An index for `findPossibleDuplicates` (opening a case names the open cases of a child with the same
 * names and birth date): family name (lower case) and birth date from the intake, so the lookup does
 * not read every case's intake.
 */
export const migration020: Migration = {
  version: 20,
  name: 'cases-patient-index',
  sql: `
CREATE INDEX cases_patient_key ON cases (lower(intake->'patient'->'name'->>'family'), (intake->'patient'->>'birthDate'));
`,
};
