import type { Migration } from './index';

/**
 * Token subjects that were bound to an endpoint (`endpoints.inbound_subject`) and no longer are: the
 * endpoint was deleted, or its `inboundSubject` changed. Such an EHR client opens no case (it was
 * limited to its endpoint's cases; losing the binding must not make it an unbound, unlimited
 * client under `EHR_CASE_ACCESS=linked-or-unbound`). A subject bound again to a live endpoint is
 * that endpoint's client again. Backfilled from the endpoints already deleted.
 */
export const migration028: Migration = {
  version: 28,
  name: 'retired-inbound-subjects',
  sql: `
CREATE TABLE retired_inbound_subjects (
  subject text PRIMARY KEY,
  endpoint_id uuid NOT NULL REFERENCES endpoints (id),
  retired_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO retired_inbound_subjects (subject, endpoint_id, retired_at)
SELECT DISTINCT ON (inbound_subject) inbound_subject, id, deleted_at FROM endpoints
WHERE deleted_at IS NOT NULL AND inbound_subject IS NOT NULL
ORDER BY inbound_subject, deleted_at DESC;
`,
};
