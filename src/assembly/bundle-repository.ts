import type { Bundle } from 'fhir/r4';
import type { Database } from '../db/database';

export interface StoredBundle {
  readonly caseId: string;
  readonly version: number;
  readonly bundle: Bundle;
  readonly report: unknown;
  readonly trigger: string;
  readonly createdAt: Date;
}

/** Stores an assembly as the case's next bundle version (versions are never overwritten). */
export async function insertBundleVersion(
  db: Database,
  v: { caseId: string; bundleId: string; bundle: Bundle; report: unknown; options: unknown; trigger: string },
): Promise<number> {
  return db.transaction(async (tx) => {
    // Serialise versions per case (two assemblies at once get consecutive versions).
    await tx.query('SELECT id FROM cases WHERE id = $1 FOR UPDATE', [v.caseId]);
    const { rows } = await tx.query<{ version: number }>(
      `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger)
       SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, $4, $5, $6 FROM case_bundles WHERE case_id = $1
       RETURNING version`,
      [v.caseId, v.bundleId, JSON.stringify(v.bundle), JSON.stringify(v.report), JSON.stringify(v.options), v.trigger],
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
