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

/** How the versions recorded in `schema_migrations` differ from the migrations compiled in. */
interface SchemaComparison {
  /** Recorded versions this build has no migration for (sorted): a newer release migrated the database. */
  readonly unknown: readonly number[];
  /** Versions this build knows that are not recorded (sorted). */
  readonly missing: readonly number[];
  /** The highest migration this build knows (0 for none). */
  readonly highest: number;
}

/** Compares `recorded` with `migrations`' versions, once. */
function compareVersions(recorded: Iterable<number>, migrations: readonly Migration[]): SchemaComparison {
  const known = new Set(migrations.map((m) => m.version));
  const seen = new Set(recorded);
  const ascending = (a: number, b: number): number => a - b;
  return {
    unknown: [...seen].filter((v) => !known.has(v)).sort(ascending),
    missing: [...known].filter((v) => !seen.has(v)).sort(ascending),
    highest: Math.max(0, ...known),
  };
}

/** Throws {@link SchemaMismatchError} when `comparison` found a version on either side only. */
function refuseMismatch({ unknown, missing, highest }: SchemaComparison): void {
  if (unknown.length > 0 || missing.length > 0) throw new SchemaMismatchError(unknown, missing, highest);
}

/**
 * Throws {@link SchemaMismatchError} when `recorded` holds a version that `migrations` does not know.
 * Versions not recorded yet are not refused: the migrator is about to apply them.
 */
export function refuseNewerSchema(recorded: Iterable<number>, migrations: readonly Migration[] = MIGRATIONS): void {
  refuseMismatch({ ...compareVersions(recorded, migrations), missing: [] });
}

/** Rejects with {@link SchemaMismatchError} unless the recorded versions are exactly `migrations`' versions. */
export async function checkSchemaVersions(db: Queryable, migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
  refuseMismatch(compareVersions(rows.map((r) => Number(r.version)), migrations));
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
