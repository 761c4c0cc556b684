import type { Migration } from './index';

/**
 * Two keys that dropped changed records.
 *
 * Raw resources without `meta.versionId` (https://hl7.org/fhir/R4/resource.html#Meta) were keyed
 * `version_id = ''`, so a changed resource received later hit the key of its first content and was
 * dropped (`ON CONFLICT DO NOTHING`): the bundle kept the stale record. Such a row is now keyed by
 * its content, `sha256:<hex of its bytes>` (the row's `sha256`), as `commitPage` keys new ones
 * (src/pull/pull-repository.ts): the same content received again is still stored once, and a change
 * is a new row. The rows stored before are re-keyed here, so the next pull of unchanged content finds
 * its row instead of adding a copy of it. Only the key changes; the stored resource, its hash, fetch
 * time and page stay as they were (raw is never rewritten). A row whose new key is already taken (a
 * server that sent that very string as a versionId) keeps its old key.
 *
 * Attachments (https://hl7.org/fhir/R4/datatypes.html#Attachment) were one row per (resource,
 * position), so a new version of a DocumentReference or DiagnosticReport pointing at another Binary
 * never had it fetched, and assembly filled the new version's hash and size from the old file. A row
 * is now also identified by what it is fetched from: its `url`, and for inline data the SHA-256 of the
 * base64 text the resource carries (`data_sha256`). The inline rows stored before get their digest
 * from the version they were found with (the raw row of the same task), except where that resource's
 * text holds a `\u` escape (PostgreSQL cannot decode some of them, e.g. `\u0000`, and would fail the
 * migration): those keep NULL, which only means their data is stored once more,
 * under a row with the digest, when it is received again.
 *
 * Both updates touch only the rows named and take no lock beyond them; the unique index is rebuilt
 * with more columns, so the rows already unique stay unique.
 */
export const migration027: Migration = {
  version: 27,
  name: 'versionless-and-attachment-identity',
  sql: `
UPDATE raw_resources r SET version_id = 'sha256:' || r.sha256
 WHERE r.version_id = ''
   AND NOT EXISTS (
     SELECT 1 FROM raw_resources o
      WHERE o.case_id = r.case_id AND o.source_id = r.source_id AND o.resource_type = r.resource_type
        AND o.remote_id = r.remote_id AND o.version_id = 'sha256:' || r.sha256);

ALTER TABLE attachments ADD COLUMN data_sha256 text;

UPDATE attachments a SET data_sha256 = encode(sha256(convert_to(found.data, 'UTF8')), 'hex')
  FROM (
    SELECT DISTINCT ON (a2.id) a2.id,
           CASE
             WHEN a2.position = 'Binary' THEN r.resource ->> 'data'
             WHEN a2.position ~ '^content\\[[0-9]+\\]\\.attachment$'
               THEN r.resource -> 'content' -> (substring(a2.position FROM '^content\\[([0-9]+)\\]')::int) -> 'attachment' ->> 'data'
             WHEN a2.position ~ '^presentedForm\\[[0-9]+\\]$'
               THEN r.resource -> 'presentedForm' -> (substring(a2.position FROM '^presentedForm\\[([0-9]+)\\]')::int) ->> 'data'
           END AS data
      FROM attachments a2
      JOIN raw_resources r ON r.case_id = a2.case_id AND r.source_id = a2.source_id AND r.resource_type = a2.resource_type
                          AND r.remote_id = a2.remote_id AND r.task_id = a2.task_id
     WHERE a2.inline AND position('\\u' IN r.resource::text) = 0
     ORDER BY a2.id, r.fetched_at, r.version_id
  ) found
 WHERE a.id = found.id AND found.data IS NOT NULL;

DROP INDEX attachments_identity;
CREATE UNIQUE INDEX attachments_identity ON attachments (case_id, source_id, resource_type, remote_id, position, url, data_sha256) NULLS NOT DISTINCT;
`,
};
