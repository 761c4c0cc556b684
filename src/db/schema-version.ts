import type { Queryable } from './database';
import { MIGRATIONS, type Migration } from './migrations';

/**
 * Whether the database's schema is the one this build knows: the set of versions recorded in
 * `schema_migrations` against the set of migrations compiled in. A database migrated by a newer
 * release (a version above, or beside, what this build knows) stops the boot (`migrate`) and fails
 * readiness; so does one missing a migration this build applied (a row removed by hand).
 */
export class SchemaMismatchError extends Error {
  constructor(
    /** Versions recorded in the database that this build has no migration for. */
    readonly unknown: readonly number[],
    /** Versions this build knows that the database has not recorded. */
    readonly missing: readonly number[],
    /** The highest migration this build knows. */
    readonly highestKnown: number,
  ) {
    super(
      unknown.length > 0
        ? `The database schema is newer than this release: schema_migrations holds version ${unknown.join(', ')}, ` +
            `this release knows migrations up to ${highestKnown} (a newer release migrated it). Run that release, or restore a backup from before it.`
        : `The database schema lacks migration ${missing.join(', ')} of this release (it knows up to ${highestKnown}): schema_migrations was changed by hand.`,
    );
    this.name = 'SchemaMismatchError';
  }
}

/** The versions of `migrations` sorted, and the highest (0 for none). */
function known(migrations: readonly Migration[]): { versions: Set<number>; highest: number } {
  const versions = new Set(migrations.map((m) => m.version));
  return { versions, highest: Math.max(0, ...versions) };
}

/** Recorded versions this build does not know (sorted): a newer release migrated the database. */
function unknownVersions(recorded: Iterable<number>, migrations: readonly Migration[]): number[] {
  const { versions } = known(migrations);
  return [...recorded].filter((v) => !versions.has(v)).sort((a, b) => a - b);
}

/** Throws {@link SchemaMismatchError} when `recorded` holds a version that `migrations` does not know. */
export function refuseNewerSchema(recorded: Iterable<number>, migrations: readonly Migration[] = MIGRATIONS): void {
  const unknown = unknownVersions(recorded, migrations);
  if (unknown.length > 0) throw new SchemaMismatchError(unknown, [], known(migrations).highest);
}

/** Rejects with {@link SchemaMismatchError} unless the recorded versions are exactly `migrations`' versions. */
export async function checkSchemaVersions(db: Queryable, migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
  const recorded = new Set(rows.map((r) => Number(r.version)));
  const { versions, highest } = known(migrations);
  const unknown = unknownVersions(recorded, migrations);
  const missing = [...versions].filter((v) => !recorded.has(v)).sort((a, b) => a - b);
  if (unknown.length > 0 || missing.length > 0) throw new SchemaMismatchError(unknown, missing, highest);
}

/**
 * A readiness check of the schema version, cheap enough for every probe: one small query at most
 * every `cacheMs`, its answer (good or bad) reused in between. A failed query is not cached (the
 * database check names an unreachable database; the next probe asks again).
 */
export function schemaReadinessCheck(db: Queryable, cacheMs = 30_000): () => Promise<void> {
  let cached: { at: number; error: SchemaMismatchError | undefined } | undefined;
  return async () => {
    const now = Date.now();
    if (!cached || now - cached.at >= cacheMs) {
      try {
        await checkSchemaVersions(db);
        cached = { at: now, error: undefined };
      } catch (err) {
        if (!(err instanceof SchemaMismatchError)) throw err;
        cached = { at: now, error: err };
      }
    }
    if (cached.error) throw cached.error;
  };
}
