import type { Bundle } from 'fhir/r4';
import type { Database } from '../db/database';
import { bundleJsonParts } from './bundle-json';

export interface StoredBundle {
  readonly caseId: string;
  readonly version: number;
  readonly bundle: Bundle;
  readonly report: unknown;
  readonly trigger: string;
  readonly createdAt: Date;
}

/**
 * Stores an assembly as the case's next bundle version (versions are never overwritten).
 *
 * The bundle's JSON text goes to PostgreSQL in parts of a few MB ({@link bundleJsonParts}) into a
 * temporary table and is joined there, so this process never holds the whole text (~100 MB for a
 * 50,000-resource case) nor the driver's copy of it. The stored value is the same text
 * `JSON.stringify(bundle)` gives. Where the server has LZ4, the row is TOAST-compressed with it
 * rather than pglz (several times faster on ~100 MB of JSON; values read back the same).
 */
export async function insertBundleVersion(
  db: Database,
  v: { caseId: string; bundleId: string; bundle: Bundle; report: unknown; options: unknown; trigger: string },
): Promise<number> {
  return db.transaction(async (tx) => {
    // Serialise versions per case (two assemblies at once get consecutive versions).
    await tx.query('SELECT id FROM cases WHERE id = $1 FOR UPDATE', [v.caseId]);
    await tx.query(
      `SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings
       WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)`,
    );
    const parts = bundleJsonParts(v.bundle);
    const first = parts.next();
    const second = parts.next();
    const params: unknown[] = [v.caseId, v.bundleId, JSON.stringify(v.report), JSON.stringify(v.options), v.trigger];
    let bundleSql: string;
    if (first.done || second.done) {
      bundleSql = '$6::json';
      params.push(first.done ? JSON.stringify(v.bundle) : first.value);
    } else {
      // Several parts: staged in a temporary table (dropped at commit), joined by the INSERT.
      await tx.exec('CREATE TEMP TABLE bundle_parts (n integer PRIMARY KEY, part text NOT NULL) ON COMMIT DROP');
      await tx.exec('ALTER TABLE bundle_parts ALTER COLUMN part SET STORAGE EXTERNAL'); // not compressed: read back once
      let n = 0;
      await tx.query('INSERT INTO bundle_parts (n, part) VALUES ($1, $2)', [n++, first.value]);
      await tx.query('INSERT INTO bundle_parts (n, part) VALUES ($1, $2)', [n++, second.value]);
      for (const part of parts) await tx.query('INSERT INTO bundle_parts (n, part) VALUES ($1, $2)', [n++, part]);
      bundleSql = "(SELECT string_agg(part, '' ORDER BY n) FROM bundle_parts)::json";
    }
    const { rows } = await tx.query<{ version: number }>(
      `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger)
       SELECT $1, COALESCE(max(version), 0) + 1, $2, ${bundleSql}, $3, $4, $5 FROM case_bundles WHERE case_id = $1
       RETURNING version`,
      params,
    );
    return rows[0]?.version ?? 0;
  });
}

export async function findBundle(db: Database, caseId: string, version?: number): Promise<StoredBundle | undefined> {
  const { rows } = await db.query<{ case_id: string; version: number; bundle: Bundle; report: unknown; trigger: string; created_at: Date }>(
    version === undefined
      ? 'SELECT case_id, version, bundle, report, trigger, created_at FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1'
      : 'SELECT case_id, version, bundle, report, trigger, created_at FROM case_bundles WHERE case_id = $1 AND version = $2',
    version === undefined ? [caseId] : [caseId, version],
  );
  const row = rows[0];
  return row ? { caseId: row.case_id, version: row.version, bundle: row.bundle, report: row.report, trigger: row.trigger, createdAt: row.created_at } : undefined;
}

export async function findReport(db: Database, caseId: string): Promise<{ version: number; report: unknown } | undefined> {
  const { rows } = await db.query<{ version: number; report: unknown }>(
    'SELECT version, report FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1',
    [caseId],
  );
  return rows[0];
}
