/**
 * The one thin database interface the service codes against. Two implementations:
 * PostgreSQL through `pg` (production) and embedded PGlite (zero-setup default, single process).
 * Both run the same SQL; keep queries to what both support (they are the same engine).
 */

export interface QueryResult<R> {
  readonly rows: R[];
  /** Rows inserted, updated or deleted by the statement (0 for SELECT on PGlite). */
  readonly rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of one or more statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type DatabaseBackend = 'postgres' | 'pglite';

export interface Database extends Queryable {
  readonly backend: DatabaseBackend;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
