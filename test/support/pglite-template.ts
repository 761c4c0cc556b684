/**
 * Migrated PGlite data folders for tests, built once per machine and copied for each test database.
 *
 * A fresh PGlite (WASM PostgreSQL) takes 4–7 s here to create its cluster and run the migrations;
 * reopening a copy of a closed, migrated one takes ~0.7 s. So each list of migrations (all of them,
 * or the first N for a migration test) is applied once into a template folder under the OS temp
 * folder, named by a hash of PGlite's version and every migration's SQL (a changed migration or
 * PGlite version makes a new one), and every test database is a copy of it. A copy of a closed
 * cluster's folder is a cluster like the original (a cold copy of PGDATA). Templates are built in a
 * private folder and renamed into place, so parallel jest workers never see a half-built one. The
 * full first-time migration on PGlite is still run for real: by the template's build, and by the
 * demo test (`npm run demo` on a fresh DATA_DIR).
 * @packageDocumentation
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Migration } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { PgliteDatabase } from '../../src/db/pglite';
import { STALE_TEMPLATE_MS } from './migration-lists';
import { migrationsDigest } from './migrations-digest';

/** Where the templates are kept (one folder per list of migrations). */
export const TEMPLATES = path.join(os.tmpdir(), 'sob-pglite-templates');

function pgliteVersion(): string {
  // Its `exports` do not list package.json: read from the repository's node_modules.
  const manifest = path.resolve(__dirname, '..', '..', 'node_modules', '@electric-sql', 'pglite', 'package.json');
  return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/** The template folder of `migrations`: PGlite's version and each migration's number, name and SQL, hashed. */
function templateFolder(migrations: readonly Migration[]): string {
  return path.join(TEMPLATES, `${migrations.length}-${migrationsDigest(migrations, pgliteVersion())}`);
}

/** The template of the longest list of the first migrations of `migrations` that has one (not all of them). */
function longestBuiltPrefix(migrations: readonly Migration[]): string | undefined {
  for (let n = migrations.length - 1; n > 0; n -= 1) {
    const folder = templateFolder(migrations.slice(0, n));
    if (fs.existsSync(folder)) return folder;
  }
  return undefined;
}

/**
 * Builds the template in a private folder, then renames it into place (another worker may have won:
 * its copy is as good). It starts from a copy of the template of the longest list of first
 * migrations already built, if any, and applies the rest: a migration test's template (migrations
 * before N) and the full one then share the cluster's creation and the migrations they have in
 * common.
 */
async function buildTemplate(folder: string, migrations: readonly Migration[]): Promise<void> {
  fs.mkdirSync(TEMPLATES, { recursive: true });
  const building = fs.mkdtempSync(path.join(TEMPLATES, 'building-'));
  try {
    const prefix = longestBuiltPrefix(migrations);
    if (prefix) fs.cpSync(prefix, building, { recursive: true });
    const db = await PgliteDatabase.open(building);
    await migrate(db, migrations);
    await db.close();
    fs.renameSync(building, folder);
  } catch (err) {
    fs.rmSync(building, { recursive: true, force: true });
    if (!fs.existsSync(folder)) throw err;
  }
}

/**
 * Fills `dataDir` (created; it must not exist or be empty) with a PGlite cluster that has exactly
 * `migrations` applied, copied from their template (built first when there is none).
 */
export async function copyMigratedPglite(dataDir: string, migrations: readonly Migration[]): Promise<void> {
  fs.cpSync(await ensurePgliteTemplate(migrations), dataDir, { recursive: true });
}

/** The template folder of `migrations`, built first when there is none (jest's global setup builds the usual ones). */
export async function ensurePgliteTemplate(migrations: readonly Migration[]): Promise<string> {
  const template = templateFolder(migrations);
  if (!fs.existsSync(template)) await buildTemplate(template, migrations);
  return template;
}

/** A private build folder is left by a killed run once this old (a build takes seconds). */
const ABANDONED_BUILD_MS = 60 * 60 * 1000;

/**
 * Removes the template folders no list of `current` has (an older set of migrations, another PGlite
 * version) once a day old, and build folders a killed run left: each is a whole PGlite cluster (~40 MB),
 * and every change to the migrations makes new ones. A day's grace leaves the templates of another
 * checkout whose tests run at the same time alone. Nothing here is needed again: a list whose template
 * is gone has it built on first use.
 */
export function pruneStalePgliteTemplates(current: readonly (readonly Migration[])[]): string[] {
  if (!fs.existsSync(TEMPLATES)) return [];
  const keep = new Set(current.map((migrations) => path.basename(templateFolder(migrations))));
  const removed: string[] = [];
  for (const name of fs.readdirSync(TEMPLATES)) {
    if (keep.has(name)) continue;
    const folder = path.join(TEMPLATES, name);
    const age = Date.now() - fs.statSync(folder).mtimeMs;
    if (age < (name.startsWith('building-') ? ABANDONED_BUILD_MS : STALE_TEMPLATE_MS)) continue;
    fs.rmSync(folder, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
