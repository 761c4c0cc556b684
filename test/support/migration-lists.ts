/**
 * The lists of migrations test databases are made with: all of them, or the store as it was before
 * the migration a migration test is about. One place, so jest's global setup can build their
 * templates before the test files ask for them (`global-setup.ts`).
 * @packageDocumentation
 */
import { MIGRATIONS, type Migration } from '../../src/db/migrations';

/** Every migration before `version`: the store a migration test populates, then migrates. */
export const migrationsBefore = (version: number): Migration[] => MIGRATIONS.filter((m) => m.version < version);

/** Every migration but `version` (migration 027's test: the later ones do not depend on it). */
export const migrationsWithout = (version: number): Migration[] => MIGRATIONS.filter((m) => m.version !== version);

/**
 * What the migration tests start from, and the full list. A list not named here is still built on
 * first use (from the longest of these it begins with), only by a test file, while others wait.
 */
export const TEST_MIGRATION_LISTS: readonly (readonly Migration[])[] = [
  migrationsBefore(27),
  migrationsBefore(30),
  migrationsBefore(37),
  migrationsBefore(44),
  migrationsWithout(27),
  MIGRATIONS,
];

/**
 * A template of a list not named here (an older set of migrations) is removed once this old or, for
 * PostgreSQL's, this long unused: another checkout's run may still be copying it.
 */
export const STALE_TEMPLATE_MS = 24 * 60 * 60 * 1000;

/**
 * The lists PostgreSQL test databases are made with: the above, and those of the migration tests that
 * run on PostgreSQL only (045, 046), whose templates PGlite never needs.
 */
export const POSTGRES_MIGRATION_LISTS: readonly (readonly Migration[])[] = [...TEST_MIGRATION_LISTS, migrationsBefore(45), migrationsBefore(46)];
