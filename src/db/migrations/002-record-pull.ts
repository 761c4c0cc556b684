import type { Migration } from './index';

/**
 * Record pull: registered FHIR endpoints, a case's sources, pulls and their tasks, the raw store
 * (pages exactly as received + one row per resource), content-addressed blobs and attachments.
 */
export const migration002: Migration = {
  version: 2,
  name: 'record-pull',
  sql: `
CREATE TABLE endpoints (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  base_url text NOT NULL,
  auth_type text NOT NULL CHECK (auth_type IN ('none', 'bearer', 'smart-backend')),
  client_id text,
  scope text,
  -- Bearer token or SMART private key, AES-256-GCM sealed (src/security/secret-box.ts).
  sealed_secret text,
  max_requests_per_second double precision NOT NULL,
  max_concurrency integer NOT NULL,
  allow_insecure_http boolean NOT NULL DEFAULT false,
  capabilities jsonb,
  capabilities_fetched_at timestamptz,
  capabilities_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);

CREATE TABLE case_sources (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  endpoint_id uuid NOT NULL REFERENCES endpoints(id),
  selector jsonb NOT NULL,
  state text NOT NULL CHECK (state IN ('resolved', 'needs_review')),
  remote_patient_id text,
  candidates jsonb NOT NULL DEFAULT '[]',
  review_reason text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX case_sources_one_per_endpoint ON case_sources (case_id, endpoint_id);

CREATE TABLE pulls (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'complete', 'partial', 'failed')),
  since timestamptz,
  types text[],
  requested_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  attempt integer NOT NULL DEFAULT 1
);
CREATE INDEX pulls_case_idx ON pulls (case_id, created_at DESC);

-- One task per (pull, source, query). Its cursor (next_url) and counters are committed in the
-- same transaction as the page they follow, so a restarted job resumes after its last page.
CREATE TABLE pull_tasks (
  id uuid PRIMARY KEY,
  pull_id uuid NOT NULL REFERENCES pulls(id) ON DELETE CASCADE,
  source_id uuid NOT NULL REFERENCES case_sources(id) ON DELETE CASCADE,
  resource_type text NOT NULL,
  query_key text NOT NULL,
  request_path text NOT NULL,
  request_params jsonb NOT NULL,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'complete', 'failed')),
  next_url text,
  pages integer NOT NULL DEFAULT 0,
  resources integer NOT NULL DEFAULT 0,
  -- Resources received per type (an $everything task returns many types).
  type_counts jsonb NOT NULL DEFAULT '{}',
  attachments integer NOT NULL DEFAULT 0,
  attachments_failed integer NOT NULL DEFAULT 0,
  retries integer NOT NULL DEFAULT 0,
  last_error text,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pull_tasks_identity ON pull_tasks (pull_id, source_id, query_key);

-- Raw is sacred: each page body exactly as received (after transfer decoding).
CREATE TABLE raw_pages (
  task_id uuid NOT NULL REFERENCES pull_tasks(id) ON DELETE CASCADE,
  page_no integer NOT NULL,
  body bytea NOT NULL,
  sha256 text NOT NULL,
  fetched_at timestamptz NOT NULL,
  PRIMARY KEY (task_id, page_no)
);

-- One row per resource version received, keyed so that storing it again is a no-op.
CREATE TABLE raw_resources (
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  source_id uuid NOT NULL REFERENCES case_sources(id) ON DELETE CASCADE,
  resource_type text NOT NULL,
  remote_id text NOT NULL,
  version_id text NOT NULL DEFAULT '',
  resource jsonb NOT NULL,
  sha256 text NOT NULL,
  fetched_at timestamptz NOT NULL,
  pull_id uuid NOT NULL,
  task_id uuid NOT NULL,
  page_no integer NOT NULL,
  PRIMARY KEY (case_id, source_id, resource_type, remote_id, version_id)
);

CREATE TABLE blobs (
  sha256 text PRIMARY KEY,
  size bigint NOT NULL,
  content_type text,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Attachments found in pulled resources (DocumentReference.content, DiagnosticReport.presentedForm,
-- Binary, inline data), fetched by the attachment queue into blobs.
CREATE TABLE attachments (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  source_id uuid NOT NULL REFERENCES case_sources(id) ON DELETE CASCADE,
  task_id uuid NOT NULL REFERENCES pull_tasks(id) ON DELETE CASCADE,
  resource_type text NOT NULL,
  remote_id text NOT NULL,
  position text NOT NULL,
  url text,
  inline boolean NOT NULL,
  content_type text,
  declared_size bigint,
  declared_sha1 text,
  state text NOT NULL CHECK (state IN ('pending', 'fetched', 'failed')),
  blob_sha256 text REFERENCES blobs(sha256),
  size bigint,
  integrity text,
  error text,
  attempts integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX attachments_identity ON attachments (case_id, source_id, resource_type, remote_id, position);
`,
};
