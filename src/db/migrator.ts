import { createHash } from 'node:crypto';
import type { Database } from './database';
import { MIGRATIONS, type Migration } from './migrations';
import { logger } from '../log';
import { refuseNewerSchema } from './schema-version';

/**
 * A small forward-only migrator, used instead of a library because it must run the same
 * migrations on PostgreSQL and on embedded PGlite (node-pg-migrate and friends need a `pg`
 * client and are ESM-only at their current versions), and because it needs only this:
 *
 * - migrations are TypeScript modules exporting SQL (so they ship inside the compiled build),
 *   numbered, applied in order, each recorded with a checksum in `schema_migrations`;
 * - all pending migrations run in ONE transaction that first takes a transaction-scoped advisory
 *   lock, so several processes booting at once apply each migration exactly once;
 * - an applied migration whose text changed stops the boot (fix forward with a new migration);
 * - a database a newer release migrated (a recorded version this build has no migration for) stops
 *   the boot too, naming the versions (`SchemaMismatchError`): this build's queries may not fit it.
 */
const MIGRATION_LOCK_KEY = 7_246_501_123;

export class MigrationChecksumError extends Error {
  constructor(version: number, name: string) {
    super(`Migration ${version} (${name}) was changed after it was applied; add a new migration instead.`);
    this.name = 'MigrationChecksumError';
  }
}

export function checksum(migration: Migration): string {
  return createHash('sha256').update(migration.sql).digest('hex');
}

/** Applies every pending migration; returns the versions applied by this call. */
export async function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied = await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
    );
    const done = new Map(rows.map((row) => [row.version, row]));
    refuseNewerSchema(done.keys(), migrations);
    const appliedNow: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      const existing = done.get(migration.version);
      if (existing) {
        if (existing.checksum !== checksum(migration)) throw new MigrationChecksumError(migration.version, migration.name);
        continue;
      }
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        checksum(migration),
      ]);
      appliedNow.push(migration.version);
    }
    return appliedNow;
  });
  if (applied.length > 0) logger.info('migrations applied', { migrations: applied, backend: db.backend });
  return applied;
}
