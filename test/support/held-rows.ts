/**
 * Races made deterministic: a request runs while another transaction holds, uncommitted, the rows it
 * writes; that transaction commits once the request either answered or waits for those rows (seen
 * in `pg_stat_activity`), so the request always meets the other write mid-way, with no sleeps.
 * @packageDocumentation
 */
import pg from 'pg';
import type { Database } from '../../src/db/database';
import { eventually } from './service';

/** A PostgreSQL session of the test's own (outside the service's pool) holding locks in an open transaction. */
export interface HeldLock {
  readonly client: pg.Client;
  /** The session's backend pid. */
  readonly pid: number;
}

/**
 * Opens a session on `databaseUrl` (the service's `config.databaseUrl`), begins a transaction and runs `sql` in it: the locks it takes are
 * held until the test commits or rolls back, and ends the session (`client.end()`).
 */
export async function holdLock(databaseUrl: string | undefined, sql: string, params: unknown[]): Promise<HeldLock> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const pid = ((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number }).pid;
  await client.query('BEGIN');
  await client.query(sql, params);
  return { client, pid };
}

/** How many sessions wait for a lock the session `holderPid` holds (asked on `holder`). */
export async function lockWaiters(holder: pg.Client, holderPid: number): Promise<number> {
  const { rows } = await holder.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))', [holderPid]);
  return rows[0]?.n ?? 0;
}

/**
 * Waits (15 s at most) until a session waits for a lock `holder` holds; the error lists what every
 * session of the database was doing. (Not told apart by its statement: a session waiting for a table
 * lock while its statement is parsed still shows the one before, and a long statement is cut in
 * `pg_stat_activity`.)
 */
export async function someoneWaitsFor(holder: pg.Client, holderPid: number): Promise<void> {
  try {
    await eventually(() => lockWaiters(holder, holderPid), (n) => n > 0, 15_000);
  } catch {
    const activity = await holder.query('SELECT pid, state, wait_event_type, pg_blocking_pids(pid) AS blockers, left(query, 200) AS query FROM pg_stat_activity WHERE datname = current_database()');
    throw new Error(`no session of the service waited for the lock held: ${JSON.stringify(activity.rows)}`);
  }
}

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
