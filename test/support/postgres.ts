import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../../src/db/database';
import type { Migration } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
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
 * A fresh, migrated PostgreSQL database for one test file, so files run in parallel without
 * sharing state. Dropped at the end of the file.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `sob_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase({ databaseUrl: url.toString(), dataDir: '/nonexistent', poolSize: 5 });
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-pglite-'));
  const db = await openDatabase({ dataDir: dir });
  return {
    db,
    async close() {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A fresh database on `backend` with only `migrations` applied (a migration test: the store as it was
 * before the migration under test, populated, then migrated). `close()` drops or deletes it.
 */
export async function databaseWithMigrations(backend: Backend, migrations: readonly Migration[]): Promise<{ db: Database; close(): Promise<void> }> {
  if (backend === 'pglite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-migration-'));
    const db = await PgliteDatabase.open(dir);
    await migrate(db, migrations);
    return {
      db,
      async close() {
        await db.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `sob_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
  const url = new URL(TEST_POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const db = new PostgresDatabase(url.toString(), 2);
  await migrate(db, migrations);
  return {
    db,
    async close() {
      await db.close();
      const cleanup = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => cleanup.end());
    },
  };
}
