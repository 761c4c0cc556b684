/**
 * Rows of `assignments` (migration 006): at most one current assignment per case.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';

/** A case's assignment to a specialist. */
export interface AssignmentRecord {
  readonly id: string;
  readonly caseId: string;
  readonly specialistId: string;
  readonly method: 'named' | 'matched';
  readonly matchedSpecialty: string | null;
  readonly assignedBy: string;
  readonly assignedAt: Date;
}

interface AssignmentRow {
  id: string;
  case_id: string;
  specialist_id: string;
  method: 'named' | 'matched';
  matched_specialty: string | null;
  assigned_by: string;
  assigned_at: Date;
}

/** Records an assignment. */
export async function insertAssignment(db: Queryable, a: AssignmentRecord): Promise<void> {
  await db.query(
    `INSERT INTO assignments (id, case_id, specialist_id, method, matched_specialty, assigned_by, assigned_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [a.id, a.caseId, a.specialistId, a.method, a.matchedSpecialty, a.assignedBy, a.assignedAt],
  );
}

/** Ends an assignment (a reassignment hands the case on); the case then has no current one until the next is inserted. */
export async function endAssignment(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query('UPDATE assignments SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL', [id, at]);
}

/** The case's current assignment, if any. */
export async function findCurrentAssignment(db: Queryable, caseId: string): Promise<AssignmentRecord | undefined> {
  const { rows } = await db.query<AssignmentRow>(
    `SELECT id, case_id, specialist_id, method, matched_specialty, assigned_by, assigned_at
     FROM assignments WHERE case_id = $1 AND ended_at IS NULL`,
    [caseId],
  );
  const r = rows[0];
  return r
    ? {
        id: r.id,
        caseId: r.case_id,
        specialistId: r.specialist_id,
        method: r.method,
        matchedSpecialty: r.matched_specialty,
        assignedBy: r.assigned_by,
        assignedAt: r.assigned_at,
      }
    : undefined;
}
