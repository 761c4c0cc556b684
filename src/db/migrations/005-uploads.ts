import type { Migration } from './index';

/**
 * Family uploads (issue 6): one row per file as received (a PDF, a DICOM Part 10 file, a zip of a CD
 * export) and one per file found inside a zip, all under the upload (one POST) they came with. The
 * bytes are in the blob store, stored unchanged before anything is derived from them; parsing only
 * fills `state`, `reason` and `metadata`. Per-case upload tokens let a family portal upload to one
 * case only; only the SHA-256 of a token is kept.
 */
export const migration005: Migration = {
  version: 5,
  name: 'uploads',
  sql: `
CREATE TABLE uploads (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  -- One POST /api/cases/:id/uploads: every file it carried, and every file inside its zips.
  upload_id uuid NOT NULL,
  -- The zip a file was extracted from (NULL for a file as uploaded).
  parent_id uuid REFERENCES uploads(id) ON DELETE CASCADE,
  position integer NOT NULL,
  -- As uploaded, or the entry name inside the zip (may be PHI: never logged).
  file_name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('pdf', 'dicom', 'zip', 'unknown')),
  content_type text,
  -- NULL only for a zip entry refused before extraction (path traversal, symlink, …).
  blob_sha256 text,
  sha1_base64 text,
  size bigint NOT NULL DEFAULT 0,
  state text NOT NULL CHECK (state IN ('received', 'parsed', 'unparsed', 'flagged')),
  reason text,
  -- What parsing read: the DICOM header, the PDF inspection, the zip summary (PHI: never logged).
  metadata jsonb NOT NULL DEFAULT '{}',
  origin text NOT NULL DEFAULT 'family-upload',
  uploaded_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  parsed_at timestamptz,
  UNIQUE (upload_id, parent_id, position)
);
CREATE INDEX uploads_case_idx ON uploads (case_id, created_at, upload_id, position);
CREATE INDEX uploads_received_idx ON uploads (upload_id) WHERE state = 'received';

CREATE TABLE upload_tokens (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  token_sha256 text NOT NULL UNIQUE,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX upload_tokens_case_idx ON upload_tokens (case_id);
`,
};
