import type { Queryable } from '../db/database';
import { notFound } from '../http/problem';

/** Nothing when the case exists; else the 404 that names it (`Case <id> was not found.`). */
export async function requireCaseExists(db: Queryable, caseId: string): Promise<void> {
  const { rows } = await db.query('SELECT 1 FROM cases WHERE id = $1', [caseId]);
  if (rows.length === 0) throw notFound(`Case ${caseId}`);
}

/**
 * A list of a case's things as `{ items }`: an empty list of a case that does not exist is its 404
 * (the case is looked up only then), not an empty answer that reads as "none yet".
 */
export async function caseItems<T>(db: Queryable, caseId: string, items: T[]): Promise<{ items: T[] }> {
  if (items.length === 0) await requireCaseExists(db, caseId);
  return { items };
}
