import fs from 'node:fs';
import { PGlite, types, type Transaction } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult } from './database';

/**
 * Embedded PostgreSQL (PGlite, WASM) on disk under DATA_DIR: the zero-setup default for trying the
 * service and for the demo. It is one connection in one process and never fsyncs, so production
 * runs on PostgreSQL (see README).
 */
export class PgliteDatabase implements Database {
  readonly backend = 'pglite' as const;

  private constructor(private readonly db: PGlite) {}

  /** Opens (creating if needed) the data directory. `dir` undefined means in-memory (tests). */
  static async open(dir?: string): Promise<PgliteDatabase> {
    if (dir) fs.mkdirSync(dir, { recursive: true });
    const db = new PGlite(dir, {
      parsers: {
        [types.INT8]: (value: string) => Number(value),
        [types.DATE]: (value: string) => value,
      },
    });
    await db.waitReady;
    return new PgliteDatabase(db);
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const result = await this.db.query<R>(sql, params as unknown[]);
    return { rows: result.rows, rowCount: result.affectedRows ?? 0 };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (inner: Transaction) => {
      const tx: Queryable = {
        async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
          const result = await inner.query<R>(sql, params as unknown[]);
          return { rows: result.rows, rowCount: result.affectedRows ?? 0 };
        },
        async exec(sql: string): Promise<void> {
          await inner.exec(sql);
        },
      };
      return fn(tx);
    });
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
