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

/**
 * Ends an assignment (a reassignment hands the case on, or a deactivation releases it); the case then
 * has no current one until the next is inserted.
 */
export async function endAssignment(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query('UPDATE assignments SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL', [id, at]);
}

const COLUMNS = 'id, case_id, specialist_id, method, matched_specialty, assigned_by, assigned_at';

const toAssignment = (r: AssignmentRow): AssignmentRecord => ({
  id: r.id,
  caseId: r.case_id,
  specialistId: r.specialist_id,
  method: r.method,
  matchedSpecialty: r.matched_specialty,
  assignedBy: r.assigned_by,
  assignedAt: r.assigned_at,
});

/** The case's current assignment, if any. */
export async function findCurrentAssignment(db: Queryable, caseId: string): Promise<AssignmentRecord | undefined> {
  const { rows } = await db.query<AssignmentRow>(`SELECT ${COLUMNS} FROM assignments WHERE case_id = $1 AND ended_at IS NULL`, [caseId]);
  return rows[0] ? toAssignment(rows[0]) : undefined;
}

/**
 * The assignment a case was released from (its specialist deactivated, no other one fitting): the
 * last one that ended, when the case has no current one. Undefined for a case that is assigned, or
 * was never assigned. Whether the case still waits depends on its status too (see the callers).
 */
export async function findReleasedAssignment(db: Queryable, caseId: string): Promise<AssignmentRecord | undefined> {
  const { rows } = await db.query<AssignmentRow>(
    `SELECT ${COLUMNS} FROM assignments a
     WHERE a.case_id = $1 AND a.ended_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM assignments c WHERE c.case_id = a.case_id AND c.ended_at IS NULL)
     ORDER BY a.ended_at DESC, a.assigned_at DESC LIMIT 1`,
    [caseId],
  );
  return rows[0] ? toAssignment(rows[0]) : undefined;
}

/**
 * The specialists a reassignment took the case from (`reassigned` events, `reassignment-service.ts`,
 * including a deactivation's hand-over): they were taken off it for a reason (conflict of interest,
 * leave, a family's request), so a best match never gives it back to them; a case manager may still
 * name one. A specialist whose assignment a deactivation *released* (no one fitted then) is not
 * among them: the released assignment is the `previousAssignmentId` of the later hand-over, but it
 * ended through the release. Read under the case row lock, which every hand-over holds.
 */
export async function specialistsReassignedAway(db: Queryable, caseId: string): Promise<string[]> {
  const { rows } = await db.query<{ specialist_id: string }>(
    `SELECT DISTINCT e.data->>'previousSpecialistId' AS specialist_id FROM case_events e
     WHERE e.case_id = $1 AND e.type = 'reassigned' AND e.data ? 'previousSpecialistId'
       AND NOT EXISTS (
         SELECT 1 FROM case_events r
         WHERE r.case_id = e.case_id AND r.type = 'assignment_released' AND r.data->>'previousAssignmentId' = e.data->>'previousAssignmentId'
       )
     ORDER BY 1`,
    [caseId],
  );
  return rows.map((r) => r.specialist_id);
}

/**
 * Whether someone can act on the case: its current specialist is `active`, was deactivated
 * (`inactive`: their token opens no case), or it has none (`none`: released by a deactivation,
 * waiting for a case manager's `PUT /api/cases/:id/assignment`). Undefined for a case never assigned
 * (open to specialists: `http/case-access.ts`). One query.
 */
export type CaseSpecialistState = 'active' | 'inactive' | 'none';

export async function caseSpecialistState(db: Queryable, caseId: string): Promise<CaseSpecialistState | undefined> {
  const { rows } = await db.query<{ active: boolean | null; released: boolean }>(
    `SELECT s.active, a.id IS NULL AND EXISTS (SELECT 1 FROM assignments e WHERE e.case_id = $1 AND e.ended_at IS NOT NULL) AS released
     FROM (SELECT 1) AS one
     LEFT JOIN assignments a ON a.case_id = $1 AND a.ended_at IS NULL
     LEFT JOIN specialists s ON s.id = a.specialist_id`,
    [caseId],
  );
  const row = rows[0];
  if (row?.active !== null && row?.active !== undefined) return row.active ? 'active' : 'inactive';
  return row?.released === true ? 'none' : undefined;
}

/**
 * Inactive specialists who still hold cases in `statuses`: a deactivation whose releases did not all
 * run (the process stopped after the flag was committed), oldest assignment first.
 */
export async function inactiveSpecialistsHoldingCases(db: Queryable, statuses: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ specialist_id: string }>(
    `SELECT a.specialist_id FROM assignments a JOIN specialists s ON s.id = a.specialist_id JOIN cases c ON c.id = a.case_id
     WHERE a.ended_at IS NULL AND NOT s.active AND c.status = ANY($1::text[])
     GROUP BY a.specialist_id ORDER BY min(a.assigned_at), a.specialist_id`,
    [[...statuses]],
  );
  return rows.map((r) => r.specialist_id);
}

/** Ids of the cases currently assigned to the specialist whose status is one of `statuses`, longest assigned first. */
export async function currentlyAssignedCaseIds(db: Queryable, specialistId: string, statuses: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ case_id: string }>(
    `SELECT a.case_id FROM assignments a JOIN cases c ON c.id = a.case_id
     WHERE a.specialist_id = $1 AND a.ended_at IS NULL AND c.status = ANY($2::text[])
     ORDER BY a.assigned_at, a.case_id`,
    [specialistId, [...statuses]],
  );
  return rows.map((r) => r.case_id);
}
