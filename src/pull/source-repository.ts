import type { Queryable } from '../db/database';

export type PatientSelector = { id: string } | { identifier: { system: string; value: string } } | { match: true };

export interface PatientCandidate {
  readonly id: string;
  readonly name?: string;
  readonly birthDate?: string;
  readonly gender?: string;
  readonly identifiers: { system?: string; value?: string }[];
}

export interface SourceRow {
  readonly id: string;
  readonly caseId: string;
  readonly endpointId: string;
  readonly selector: PatientSelector;
  readonly state: 'resolved' | 'needs_review' | 'removed';
  readonly remotePatientId: string | null;
  readonly candidates: PatientCandidate[];
  readonly reviewReason: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Set when the source was removed from the case (its records are left out of the bundle). */
  readonly removed: { readonly at: Date; readonly by: string; readonly reason: string } | null;
}

interface Row {
  id: string;
  case_id: string;
  endpoint_id: string;
  selector: PatientSelector;
  state: SourceRow['state'];
  remote_patient_id: string | null;
  candidates: PatientCandidate[];
  review_reason: string | null;
  created_at: Date;
  updated_at: Date;
  removed_at: Date | null;
  removed_by: string | null;
  removed_reason: string | null;
}

const COLUMNS =
  'id, case_id, endpoint_id, selector, state, remote_patient_id, candidates, review_reason, created_at, updated_at, removed_at, removed_by, removed_reason';

const toSource = (r: Row): SourceRow => ({
  id: r.id,
  caseId: r.case_id,
  endpointId: r.endpoint_id,
  selector: r.selector,
  state: r.state,
  remotePatientId: r.remote_patient_id,
  candidates: r.candidates,
  reviewReason: r.review_reason,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  removed: r.removed_at ? { at: r.removed_at, by: r.removed_by ?? '', reason: r.removed_reason ?? '' } : null,
});

export async function insertSource(
  db: Queryable,
  s: Omit<SourceRow, 'createdAt' | 'updatedAt' | 'removed'> & { createdBy: string },
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO case_sources (id, case_id, endpoint_id, selector, state, remote_patient_id, candidates, review_reason, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (case_id, endpoint_id) WHERE state <> 'removed' DO NOTHING`,
    [s.id, s.caseId, s.endpointId, JSON.stringify(s.selector), s.state, s.remotePatientId, JSON.stringify(s.candidates), s.reviewReason, s.createdBy],
  );
  return result.rowCount === 1;
}

export async function resolveSource(db: Queryable, id: string, remotePatientId: string): Promise<void> {
  await db.query(
    `UPDATE case_sources SET state = 'resolved', remote_patient_id = $2, review_reason = NULL, updated_at = now() WHERE id = $1`,
    [id, remotePatientId],
  );
}

/**
 * Marks a source removed (not deleted: its pulls and raw records stay, accounted for as left out).
 * @returns false when it was removed already
 */
export async function markSourceRemoved(db: Queryable, id: string, by: string, reason: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE case_sources SET state = 'removed', removed_at = now(), removed_by = $2, removed_reason = $3, updated_at = now() WHERE id = $1 AND state <> 'removed'`,
    [id, by, reason],
  );
  return result.rowCount === 1;
}

export async function findSource(db: Queryable, caseId: string, id: string): Promise<SourceRow | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM case_sources WHERE case_id = $1 AND id = $2`, [caseId, id]);
  return rows[0] ? toSource(rows[0]) : undefined;
}

export async function findSourceById(db: Queryable, id: string): Promise<SourceRow | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM case_sources WHERE id = $1`, [id]);
  return rows[0] ? toSource(rows[0]) : undefined;
}

export async function listSources(db: Queryable, caseId: string): Promise<SourceRow[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM case_sources WHERE case_id = $1 ORDER BY created_at, id`, [caseId]);
  return rows.map(toSource);
}
