import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../../src/db/database';
import { MIGRATIONS, type Migration } from '../../src/db/migrations';
import { startForFile } from './for-file';
import { copyMigratedPglite } from './pglite-template';
import { databaseUrl, migratedTemplate } from './postgres-template';
import { PgliteDatabase } from '../../src/db/pglite';
import { PostgresDatabase } from '../../src/db/postgres';
import { openDatabase } from '../../src/db/open';

/** Admin URL of the test PostgreSQL server (CI starts it on 127.0.0.1:5432 with trust auth). */
export const TEST_POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly db: Database;
  readonly url: string;
  /** Closes the connection pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A new PostgreSQL database, a copy of the template with `migrations` applied (postgres-template.ts):
 * its URL, and how to drop it (connections forced out).
 */
async function createDatabase(migrations: readonly Migration[]): Promise<{ url: string; dropDatabase(): Promise<void> }> {
  const name = `sob_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${await migratedTemplate(admin, TEST_POSTGRES_ADMIN_URL, migrations)}`);
  } finally {
    await admin.end();
  }
  return {
    url: databaseUrl(TEST_POSTGRES_ADMIN_URL, name),
    async dropDatabase() {
      const cleanup = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

/**
 * A fresh, migrated PostgreSQL database for one test file, so files run in parallel without
 * sharing state: a copy of the migrated template. Dropped at the end of the file.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const created = await createDatabase(MIGRATIONS);
  // openDatabase migrates as the service does: here it finds every migration applied already.
  const db = await openDatabase({ databaseUrl: created.url, dataDir: '/nonexistent', poolSize: 5 });
  return {
    db,
    url: created.url,
    async drop() {
      await db.close();
      await created.dropDatabase();
    },
  };
}

/**
 * A {@link createTestDatabase} for the calling file: created before its tests (handed to `keep`) and
 * dropped after them (registers `beforeAll`/`afterAll`, as {@link startForFile} does).
 */
export function testDatabaseForFile(keep: (t: TestDatabase) => void, timeoutMs?: number): void {
  startForFile(
    async () => {
      const t = await createTestDatabase();
      return { t, stop: () => t.drop() };
    },
    ({ t }) => keep(t),
    timeoutMs,
  );
}

/** A temporary folder for an embedded database, and how to delete it. */
function tempFolder(prefix: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The two database backends the store runs on: PostgreSQL (production) and PGlite (embedded default). */
export type Backend = 'postgres' | 'pglite';

/**
 * A fresh, migrated database on `backend` for one test file: a {@link createTestDatabase} on
 * PostgreSQL, or PGlite in a temporary folder. `close()` drops or deletes it.
 */
export async function openBackendDatabase(backend: Backend): Promise<{ db: Database; close(): Promise<void> }> {
  if (backend === 'postgres') {
    const testDb = await createTestDatabase();
    return { db: testDb.db, close: () => testDb.drop() };
  }
  const folder = tempFolder('sob-pglite-');
  // openDatabase's PGlite is `dataDir/pglite`: a copy of the migrated template (pglite-template.ts).
  await copyMigratedPglite(path.join(folder.dir, 'pglite'), MIGRATIONS);
  const db = await openDatabase({ dataDir: folder.dir });
  return {
    db,
    async close() {
      await db.close();
      folder.remove();
    },
  };
}

/**
 * A fresh database on `backend` with only `migrations` applied (a migration test: the store as it was
 * before the migration under test, populated, then migrated). `close()` drops or deletes it.
 */
export async function databaseWithMigrations(backend: Backend, migrations: readonly Migration[]): Promise<{ db: Database; close(): Promise<void> }> {
  if (backend === 'pglite') {
    const folder = tempFolder('sob-migration-');
    await copyMigratedPglite(folder.dir, migrations);
    const db = await PgliteDatabase.open(folder.dir);
    return {
      db,
      async close() {
        await db.close();
        folder.remove();
      },
    };
  }
  const created = await createDatabase(migrations);
  const db = new PostgresDatabase(created.url, 2);
  return {
    db,
    async close() {
      await db.close();
      await created.dropDatabase();
    },
  };
}
