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
 *
 * Each run notes on its templates when it used them (the database's comment, `touchTemplate`), and the
 * templates of other migrations are dropped once a day unused, as far as runs noted
 * (`pruneStalePostgresTemplates`): every
 * change to the migrations makes new ones (~9 MB each), and without this they stayed on the server
 * for good. A day's grace leaves the templates of another checkout whose tests run at the same time
 * alone; a list whose template is gone has it built again on first use.
 * @see https://www.postgresql.org/docs/15/manage-ag-templatedbs.html
 * @packageDocumentation
 */
import pg from 'pg';
import type { Migration } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { PostgresDatabase } from '../../src/db/postgres';
import { STALE_TEMPLATE_MS } from './migration-lists';
import { migrationsDigest } from './migrations-digest';

/** Advisory lock key (of the admin database) held while a template is built or dropped. */
const TEMPLATE_LOCK_KEY = 0x50b_7e57;

/** What every template's name begins with. */
export const TEMPLATE_PREFIX = 'sob_template_';

/** The template database of `migrations`: each migration's number, name and SQL, hashed. */
export function templateName(migrations: readonly Migration[]): string {
  return `${TEMPLATE_PREFIX}${migrations.length}_${migrationsDigest(migrations)}`;
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

/** The comment a run leaves on a template it uses: when. */
const usedComment = (at: Date): string => `sob test template, last used ${at.toISOString()}`;
const USED_COMMENT = /^sob test template, last used (\S+)$/;

/**
 * Notes on template `name` that a run used it at `now` (its comment), for {@link pruneStalePostgresTemplates}.
 * Best effort: two runs noting at the same moment may collide ("tuple concurrently updated"), and either
 * note will do.
 */
export async function touchTemplate(admin: pg.Client, name: string, now = new Date()): Promise<void> {
  await admin.query(`COMMENT ON DATABASE ${admin.escapeIdentifier(name)} IS '${usedComment(now)}'`).catch(() => undefined);
}

interface TemplateRow {
  datname: string;
  datistemplate: boolean;
  comment: string | null;
}

/** When a run last noted using template `row` (its comment); undefined when none did. */
function lastUsed(row: TemplateRow): number | undefined {
  const noted = row.comment === null ? undefined : USED_COMMENT.exec(row.comment)?.[1];
  const at = noted === undefined ? Number.NaN : Date.parse(noted);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * Drops the template databases that no list of `current` has, once a day unused (see the module
 * comment), under the lock builds take. One no run has noted (built before runs noted them, or by a
 * test file for a list of its own, or half-built by a killed run) is noted now, and is aged from then.
 * A template that cannot be dropped now (a copy of it under way) is left for another run. `only`
 * narrows the candidates (a test's own databases).
 * @returns the names dropped
 */
export async function pruneStalePostgresTemplates(
  admin: pg.Client,
  current: readonly (readonly Migration[])[],
  options: { readonly only?: (name: string) => boolean; readonly now?: Date } = {},
): Promise<string[]> {
  const keep = new Set(current.map(templateName));
  const now = options.now ?? new Date();
  const dropped: string[] = [];
  await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
  try {
    const { rows } = await admin.query<TemplateRow>(
      `SELECT datname, datistemplate, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname LIKE $1`,
      [`${TEMPLATE_PREFIX.replace(/_/g, '\\_')}%`],
    );
    for (const row of rows) {
      if (keep.has(row.datname) || (options.only && !options.only(row.datname))) continue;
      const used = lastUsed(row);
      if (used === undefined) await touchTemplate(admin, row.datname, now);
      if (used === undefined || now.getTime() - used < STALE_TEMPLATE_MS) continue;
      const database = admin.escapeIdentifier(row.datname);
      try {
        // A template cannot be dropped as one; a half-built one a killed run left is not one.
        if (row.datistemplate) await admin.query(`ALTER DATABASE ${database} WITH IS_TEMPLATE false`);
        await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
        dropped.push(row.datname);
      } catch {
        // Being copied right now: a template again (if it still is there), left for another run.
        if (row.datistemplate) await admin.query(`ALTER DATABASE ${database} WITH IS_TEMPLATE true`).catch(() => undefined);
      }
    }
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]);
  }
  return dropped;
}
