import path from 'node:path';
import type { Database } from './database';
import { migrate } from './migrator';
import type { PgliteDatabase } from './pglite';
import { PostgresDatabase } from './postgres';

export interface OpenDatabaseOptions {
  readonly databaseUrl?: string;
  readonly dataDir: string;
  readonly poolSize?: number;
}

/**
 * Opens PostgreSQL when a URL is given, else PGlite under `dataDir/pglite`, and runs migrations.
 * PGlite (WASM) is required only when it is the store, so a PostgreSQL deployment never loads it.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const db = options.databaseUrl
    ? new PostgresDatabase(options.databaseUrl, options.poolSize)
    : await (require('./pglite') as { PgliteDatabase: typeof PgliteDatabase }).PgliteDatabase.open(path.join(options.dataDir, 'pglite'));
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}
