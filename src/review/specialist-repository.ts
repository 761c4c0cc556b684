/**
 * Rows of `specialists` and the open-case counts used by matching (migration 006).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { SpecialistName } from './specialist-schema';

/** Case statuses in which an assigned specialist still has work to do. */
export const OPEN_REVIEW_STATUSES: readonly string[] = ['assigned', 'in_review', 'awaiting_information'];

/** A directory entry. */
export interface SpecialistRecord {
  readonly id: string;
  readonly npi: string;
  readonly name: SpecialistName;
  readonly specialties: string[];
  readonly active: boolean;
  readonly userSub: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface SpecialistRow {
  id: string;
  npi: string;
  name: SpecialistName;
  specialty_codes: string[];
  active: boolean;
  user_sub: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, npi, name, specialty_codes, active, user_sub, created_at, updated_at';

const toSpecialist = (r: SpecialistRow): SpecialistRecord => ({
  id: r.id,
  npi: r.npi,
  name: r.name,
  specialties: r.specialty_codes,
  active: r.active,
  userSub: r.user_sub,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Inserts a specialist; false when the NPI or the user subject is taken. */
export async function insertSpecialist(db: Queryable, s: Omit<SpecialistRecord, 'createdAt' | 'updatedAt'>): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO specialists (id, npi, name, specialty_codes, active, user_sub) VALUES ($1, $2, $3, $4::text[], $5, $6)
     ON CONFLICT DO NOTHING`,
    [s.id, s.npi, JSON.stringify(s.name), s.specialties, s.active, s.userSub],
  );
  return result.rowCount === 1;
}

/** One specialist. */
export async function findSpecialist(db: Queryable, id: string): Promise<SpecialistRecord | undefined> {
  const { rows } = await db.query<SpecialistRow>(`SELECT ${COLUMNS} FROM specialists WHERE id = $1`, [id]);
  return rows[0] ? toSpecialist(rows[0]) : undefined;
}

/**
 * One specialist, its row locked `FOR SHARE` until the caller's transaction ends: an assignment
 * reads the active flag and specialties this way, so a concurrent change to them (`PATCH`, e.g. a
 * deactivation) waits for the assignment, and one committed first is seen here.
 */
export async function lockSpecialist(db: Queryable, id: string): Promise<SpecialistRecord | undefined> {
  const { rows } = await db.query<SpecialistRow>(`SELECT ${COLUMNS} FROM specialists WHERE id = $1 FOR SHARE`, [id]);
  return rows[0] ? toSpecialist(rows[0]) : undefined;
}

/** The specialist the directory binds to a token subject (`userSub`), if any. */
export async function findSpecialistBySubject(db: Queryable, subject: string): Promise<SpecialistRecord | undefined> {
  const { rows } = await db.query<SpecialistRow>(`SELECT ${COLUMNS} FROM specialists WHERE user_sub = $1`, [subject]);
  return rows[0] ? toSpecialist(rows[0]) : undefined;
}

/** Whether an NPI or user subject is already in the directory. */
export async function findSpecialistConflict(db: Queryable, npi: string | null, userSub: string | null, exceptId?: string): Promise<'npi' | 'userSub' | undefined> {
  const { rows } = await db.query<{ npi: string; user_sub: string | null }>(
    'SELECT npi, user_sub FROM specialists WHERE (npi = $1 OR user_sub = $2) AND id IS DISTINCT FROM $3::uuid',
    [npi, userSub, exceptId ?? null],
  );
  if (rows.some((r) => npi !== null && r.npi === npi)) return 'npi';
  return rows.length > 0 ? 'userSub' : undefined;
}

/** The directory, by family name; `active` filters. */
export async function listSpecialists(db: Queryable, filter: { active?: boolean; specialty?: string }): Promise<SpecialistRecord[]> {
  const { rows } = await db.query<SpecialistRow>(
    `SELECT ${COLUMNS} FROM specialists
     WHERE ($1::boolean IS NULL OR active = $1) AND ($2::text IS NULL OR specialty_codes @> ARRAY[$2::text])
     ORDER BY name->>'family', id`,
    [filter.active ?? null, filter.specialty ?? null],
  );
  return rows.map(toSpecialist);
}

/**
 * Changes active flag, specialties or user subject; undefined fields stay as they are. False when
 * the user subject is taken (by another specialist given it at the same time: the unique index).
 */
export async function updateSpecialist(
  db: Queryable,
  id: string,
  changes: { active?: boolean; specialties?: string[]; userSub?: string | null },
  at: Date,
): Promise<boolean> {
  try {
    await updateSpecialistRow(db, id, changes, at);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === '23505') return false;
    throw err;
  }
}

async function updateSpecialistRow(db: Queryable, id: string, changes: { active?: boolean; specialties?: string[]; userSub?: string | null }, at: Date): Promise<void> {
  await db.query(
    `UPDATE specialists SET
       active = COALESCE($2, active),
       specialty_codes = COALESCE($3::text[], specialty_codes),
       user_sub = CASE WHEN $4::boolean THEN $5 ELSE user_sub END,
       updated_at = $6
     WHERE id = $1`,
    [id, changes.active ?? null, changes.specialties ?? null, changes.userSub !== undefined, changes.userSub ?? null, at],
  );
}

/** Open cases (see {@link OPEN_REVIEW_STATUSES}) per specialist id; specialists without any are absent. */
export async function openCaseCounts(db: Queryable, specialistIds: readonly string[]): Promise<Map<string, number>> {
  if (specialistIds.length === 0) return new Map();
  const { rows } = await db.query<{ specialist_id: string; n: number }>(
    `SELECT a.specialist_id, count(*)::int AS n
     FROM assignments a JOIN cases c ON c.id = a.case_id
     WHERE a.ended_at IS NULL AND a.specialist_id = ANY($1::uuid[]) AND c.status = ANY($2::text[])
     GROUP BY a.specialist_id`,
    [[...specialistIds], [...OPEN_REVIEW_STATUSES]],
  );
  return new Map(rows.map((r) => [r.specialist_id, r.n]));
}
