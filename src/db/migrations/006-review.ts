import type { Migration } from './index';

/**
 * Payment, the specialist directory, assignment and the specialist's information requests.
 *
 * - `payments`: what the hospital's card processor (or a check) took, in cents. No card data:
 *   the API refuses anything that looks like it, and there is no column that could hold it.
 * - `specialists`: the directory (a FHIR Practitioner with NPI and PractitionerRole specialties).
 * - `assignments`: who reviews a case; at most one current assignment per case.
 * - `information_requests`: the specialist asks for more (re-pull, family upload, expert input);
 *   the SLA clock is paused (sla_pauses) while any request of the case is open.
 */
export const migration006: Migration = {
  version: 6,
  name: 'payments-specialists-review',
  sql: `
CREATE TABLE payments (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  amount_cents integer NOT NULL CHECK (amount_cents > 0),
  currency text NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
  method text NOT NULL,
  processor_reference text NOT NULL,
  -- Who paid (a family member's name: PHI, never logged).
  payer_name text,
  received_at timestamptz NOT NULL,
  recorded_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- One processor transaction is recorded once, whoever sends it again.
CREATE UNIQUE INDEX payments_reference_idx ON payments (method, processor_reference);
CREATE INDEX payments_case_idx ON payments (case_id, received_at);

CREATE TABLE specialists (
  id uuid PRIMARY KEY,
  npi text NOT NULL UNIQUE,
  name jsonb NOT NULL,
  specialty_codes text[] NOT NULL,
  active boolean NOT NULL DEFAULT true,
  -- Subject of the specialist's API tokens, when known: only they act on their cases.
  user_sub text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX specialists_specialty_idx ON specialists USING gin (specialty_codes);

CREATE TABLE assignments (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  specialist_id uuid NOT NULL REFERENCES specialists(id),
  method text NOT NULL CHECK (method IN ('named', 'matched')),
  matched_specialty text,
  assigned_by text NOT NULL,
  assigned_at timestamptz NOT NULL,
  ended_at timestamptz
);
CREATE UNIQUE INDEX assignments_one_current_idx ON assignments (case_id) WHERE ended_at IS NULL;
CREATE INDEX assignments_specialist_idx ON assignments (specialist_id) WHERE ended_at IS NULL;

CREATE TABLE information_requests (
  id uuid PRIMARY KEY,
  case_id uuid NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('re-pull', 'family-upload', 'expert-input')),
  state text NOT NULL CHECK (state IN ('open', 'answered')),
  -- The specialist's words to the family or the case manager (may hold PHI, never logged).
  message text,
  resource_types text[],
  since timestamptz,
  pull_id uuid REFERENCES pulls(id),
  add_on text,
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL,
  answered_by text,
  answered_at timestamptz,
  answer text
);
CREATE INDEX information_requests_case_idx ON information_requests (case_id, requested_at);
CREATE INDEX information_requests_open_pull_idx ON information_requests (pull_id) WHERE state = 'open';
`,
};
