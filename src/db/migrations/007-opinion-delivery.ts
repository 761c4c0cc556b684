import type { Migration } from './index';

/**
 * The opinion and its delivery: the specialist's draft and signed versions (with the PDF), the
 * recipients (referring physicians' EHRs) and one delivery per (version, recipient), the outbox of
 * events, case-manager notifications, webhook subscribers and their deliveries, transfer-of-care
 * requests.
 */
export const migration007: Migration = {
  version: 7,
  name: 'opinion-delivery',
  sql: `
-- The draft a specialist is writing (one per case); signing freezes it as a version.
CREATE TABLE opinion_drafts (
  case_id uuid PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
  content jsonb NOT NULL,
  specialist jsonb NOT NULL,
  author_sub text NOT NULL,
  -- The version this draft became when signed; NULL while unsigned changes exist.
  signed_version integer,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opinion_versions (
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  version integer NOT NULL,
  content jsonb NOT NULL,
  specialist jsonb NOT NULL,
  signed_by text NOT NULL,
  signed_at timestamptz NOT NULL,
  -- final for version 1, amended for later versions (FHIR DiagnosticReport.status).
  fhir_status text NOT NULL CHECK (fhir_status IN ('final', 'amended')),
  pdf bytea NOT NULL,
  pdf_sha1_base64 text NOT NULL,
  pdf_sha256 text NOT NULL,
  pdf_bytes integer NOT NULL,
  PRIMARY KEY (case_id, version)
);

-- Where the report goes: a registered endpoint (the referring physician's EHR) and the child there.
CREATE TABLE case_recipients (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  endpoint_id uuid NOT NULL REFERENCES endpoints(id),
  selector jsonb NOT NULL,
  remote_patient_id text,
  practitioner_npi text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX case_recipients_one_per_endpoint ON case_recipients (case_id, endpoint_id);

-- One delivery per (signed version, recipient). attempts is bumped and committed BEFORE each write,
-- so a crash after the write still leaves a trace; every retry searches the recipient by identifier first.
CREATE TABLE deliveries (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  recipient_id uuid NOT NULL REFERENCES case_recipients(id) ON DELETE CASCADE,
  version integer NOT NULL,
  state text NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'needs_review', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  requeues integer NOT NULL DEFAULT 0,
  remote_ids jsonb NOT NULL DEFAULT '{}',
  mode text,
  last_error text,
  review_reason text,
  candidates jsonb NOT NULL DEFAULT '[]',
  last_attempt_at timestamptz,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (case_id, version) REFERENCES opinion_versions (case_id, version)
);
CREATE UNIQUE INDEX deliveries_one_per_version ON deliveries (recipient_id, version);
CREATE INDEX deliveries_case_idx ON deliveries (case_id, version);

-- Transactional outbox: written in the same transaction as the change it announces.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  type text NOT NULL,
  case_id uuid REFERENCES cases(id) ON DELETE CASCADE,
  data jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE processed_at IS NULL;

-- What case managers see in GET /api/notifications; one per outbox event (or system report).
CREATE TABLE notifications (
  id bigserial PRIMARY KEY,
  outbox_id bigint UNIQUE REFERENCES outbox(id) ON DELETE CASCADE,
  type text NOT NULL,
  case_id uuid REFERENCES cases(id) ON DELETE CASCADE,
  message text NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  read_at timestamptz
);
CREATE INDEX notifications_recent_idx ON notifications (created_at DESC);

CREATE TABLE webhooks (
  id uuid PRIMARY KEY,
  url text NOT NULL,
  -- HMAC secret, AES-256-GCM sealed (AAD = webhook id).
  sealed_secret text NOT NULL,
  events text[] NOT NULL,
  allow_insecure_http boolean NOT NULL DEFAULT false,
  state text NOT NULL CHECK (state IN ('active', 'disabled')),
  consecutive_failures integer NOT NULL DEFAULT 0,
  last_error text,
  disabled_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY,
  webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  outbox_id bigint NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
  state text NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  last_status integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (webhook_id, outbox_id)
);

CREATE TABLE transfer_requests (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  service_request jsonb NOT NULL,
  requested_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfer_requests_case_idx ON transfer_requests (case_id, created_at);
`,
};
