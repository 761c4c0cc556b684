/**
 * Races made deterministic: a request runs while another transaction holds, uncommitted, the rows it
 * writes; that transaction commits once the request either answered or waits for those rows (seen
 * in `pg_stat_activity`), so the request always meets the other write mid-way, with no sleeps.
 * @packageDocumentation
 */
import type { Database } from '../../src/db/database';
import { eventually } from './service';

/** Whether a session of this database waits for a row lock, in a statement matching `pattern` (ILIKE). */
export async function sessionWaitsFor(db: Database, pattern: string): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query ILIKE $1`,
    [pattern],
  );
  return (rows[0]?.n ?? 0) > 0;
}

/**
 * Runs `send` while the uncommitted `statements` hold the rows they write, commits them once the
 * request either answered or waits (in a statement matching `pattern`) for those rows, and answers
 * the request's answer.
 */
export async function whileRowsHeld<T>(db: Database, statements: readonly [string, unknown[]][], pattern: string, send: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const { pending } = await db.transaction(async (tx) => {
    for (const [sql, params] of statements) await tx.query(sql, params);
    let settled = false;
    const request = send().finally(() => {
      settled = true;
    });
    await eventually(async () => settled || (await sessionWaitsFor(db, pattern)), (done) => done, timeoutMs);
    // Wrapped: the transaction commits now, not once the request answers (it waits for this one).
    return { pending: request };
  });
  return pending;
}
