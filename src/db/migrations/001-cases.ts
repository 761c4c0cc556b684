import type { Migration } from './index';

/**
 * Cases, their timeline, SLA pauses and the access audit.
 * Later capabilities attach by `case_id` (endpoints, sources, raw resources, blobs, bundles,
 * opinions, deliveries) in their own migrations.
 */
export const migration001: Migration = {
  version: 1,
  name: 'cases-timeline-audit',
  sql: `
CREATE TABLE cases (
  id uuid PRIMARY KEY,
  status text NOT NULL,
  -- The intake as submitted (PHI). Never logged; read through the API only by authorised roles.
  intake jsonb NOT NULL,
  eligibility jsonb NOT NULL,
  quote jsonb NOT NULL,
  addons_offered text[] NOT NULL DEFAULT '{}',
  addons_approved text[] NOT NULL DEFAULT '{}',
  records_complete_at timestamptz,
  sla_target_due timestamptz,
  sla_limit_due timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Optimistic concurrency for lifecycle transitions.
  revision integer NOT NULL DEFAULT 0
);
CREATE INDEX cases_status_idx ON cases (status, created_at DESC);
CREATE INDEX cases_sla_idx ON cases (sla_target_due) WHERE sla_target_due IS NOT NULL;

CREATE TABLE case_events (
  id bigserial PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL,
  actor_sub text NOT NULL,
  actor_role text,
  from_status text,
  to_status text,
  reason text,
  data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case_idx ON case_events (case_id, id);
-- An SLA miss is recorded once per case, kind and due date, however often the sweep runs.
CREATE UNIQUE INDEX case_events_sla_miss_once_idx ON case_events (case_id, type, (data->>'dueAt'))
  WHERE type IN ('sla_target_missed', 'sla_limit_missed');

CREATE TABLE sla_pauses (
  id bigserial PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  started_at timestamptz NOT NULL,
  ended_at timestamptz,
  reason text
);
CREATE UNIQUE INDEX sla_pauses_one_open_idx ON sla_pauses (case_id) WHERE ended_at IS NULL;

-- Who touched what: one row per authenticated /api request (HIPAA access audit). No PHI: ids only.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  request_id text NOT NULL,
  actor_sub text NOT NULL,
  actor_roles text[] NOT NULL,
  method text NOT NULL,
  route text NOT NULL,
  case_id uuid,
  status integer NOT NULL
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, at);
`,
};
