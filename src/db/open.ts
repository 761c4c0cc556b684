import path from 'node:path';
import type { Database } from './database';
import { migrate } from './migrator';
import { PgliteDatabase } from './pglite';
import { PostgresDatabase } from './postgres';

export interface OpenDatabaseOptions {
  readonly databaseUrl?: string;
  readonly dataDir: string;
  readonly poolSize?: number;
}

/** Opens PostgreSQL when a URL is given, else PGlite under `dataDir/pglite`, and runs migrations. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const db = options.databaseUrl
    ? new PostgresDatabase(options.databaseUrl, options.poolSize)
    : await PgliteDatabase.open(path.join(options.dataDir, 'pglite'));
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}
