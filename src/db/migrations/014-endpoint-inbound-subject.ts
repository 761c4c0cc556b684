import type { Migration } from './index';

/**
 * `endpoints.inbound_subject`: the token subject (`sub`) an EHR uses when it calls this service with
 * the `ehr` role. Binding it lets the API scope that client to the cases its endpoint is linked to
 * (as a source or a recipient); one endpoint per subject.
 */
export const migration014: Migration = {
  version: 14,
  name: 'endpoint-inbound-subject',
  sql: `
ALTER TABLE endpoints ADD COLUMN inbound_subject text;
CREATE UNIQUE INDEX endpoints_one_per_inbound_subject ON endpoints (inbound_subject) WHERE deleted_at IS NULL AND inbound_subject IS NOT NULL;
`,
};
