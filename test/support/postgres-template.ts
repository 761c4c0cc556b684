/**
 * Migrated PostgreSQL template databases for tests, built once per server and list of migrations and
 * copied for each test database (`CREATE DATABASE … TEMPLATE`).
 *
 * Creating a database and applying every migration took ~0.6 s a test file here; a copy of a
 * migrated template takes a fraction of that. A template is named by a hash of each migration's
 * number, name and SQL, so a changed or added migration makes a new one. It is built under an
 * advisory lock (parallel jest workers wait for the one that builds it) and marked
 * `IS_TEMPLATE` only once migrated: a half-built one left by a killed run is dropped and built again.
 * The migrations themselves still run for real, into the template, with the service's own migrator.
 * @see https://www.postgresql.org/docs/15/manage-ag-templatedbs.html
 * @packageDocumentation
 */
import pg from 'pg';
import type { Migration } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { PostgresDatabase } from '../../src/db/postgres';
import { migrationsDigest } from './migrations-digest';

/** Advisory lock key (of the admin database) held while a template is built. */
const TEMPLATE_LOCK_KEY = 0x50b_7e57;

/** The template database of `migrations`: each migration's number, name and SQL, hashed. */
function templateName(migrations: readonly Migration[]): string {
  return `sob_template_${migrations.length}_${migrationsDigest(migrations)}`;
}

/** The URL of database `name` on the server of `adminUrl`. */
export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Whether `name` exists, and is a finished template. */
async function templateState(admin: pg.Client, name: string): Promise<'missing' | 'half-built' | 'ready'> {
  const { rows } = await admin.query<{ datistemplate: boolean }>('SELECT datistemplate FROM pg_database WHERE datname = $1', [name]);
  if (rows.length === 0) return 'missing';
  return rows[0]?.datistemplate ? 'ready' : 'half-built';
}

/**
 * The name of a template database with exactly `migrations` applied, built first when there is none.
 * `admin` is a connection to the server's maintenance database.
 */
export async function migratedTemplate(admin: pg.Client, adminUrl: string, migrations: readonly Migration[]): Promise<string> {
  const name = templateName(migrations);
  if ((await templateState(admin, name)) === 'ready') return name;
  await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
  try {
    const state = await templateState(admin, name);
    if (state === 'ready') return name;
    if (state === 'half-built') await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    const db = new PostgresDatabase(databaseUrl(adminUrl, name), 1);
    try {
      await migrate(db, migrations);
    } finally {
      await db.close();
    }
    await admin.query(`ALTER DATABASE ${name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    return name;
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]);
  }
}
