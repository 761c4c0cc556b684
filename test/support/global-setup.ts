/**
 * Jest's global setup: builds the migrated template databases the test files copy (PostgreSQL's in
 * `postgres-template.ts`, PGlite's in `pglite-template.ts`) once, before the workers start.
 *
 * Without it the first test files of a run on a fresh machine each built the PGlite template they
 * needed at the same time, from scratch (a new cluster and every migration: 4–7 s each, up to ~25 s
 * with three workers and the PostgreSQL servers' work on two cores). Built here, shortest list
 * first, each PGlite template starts from a copy of the longest one already built, so the cluster
 * is created and each migration applied about once. PostgreSQL's are built first, then PGlite's, not
 * side by side: PGlite's WASM holds this process's event loop for seconds at a time (creating a cluster
 * above all), and on a fresh machine a PostgreSQL connection opened meanwhile failed the whole run with
 * `Connection terminated due to connection timeout` (the pool's 5 s timer fires before the I/O it waited
 * for is read). A template already built (same migrations, same PGlite) is kept; templates of other
 * migrations are removed once a day old (PGlite's) or a day unused (PostgreSQL's).
 */
import path from 'node:path';
import pg from 'pg';
import { ensurePgliteTemplate, pruneStalePgliteTemplates } from './pglite-template';
import { migratedTemplate, pruneStalePostgresTemplates, touchTemplate } from './postgres-template';
import { TEST_POSTGRES_ADMIN_URL as ADMIN_URL } from './postgres';
import { POSTGRES_MIGRATION_LISTS, TEST_MIGRATION_LISTS } from './migration-lists';
import { checkEveryPartRuns } from './test-parts';

async function buildPgliteTemplates(): Promise<void> {
  const shortestFirst = [...TEST_MIGRATION_LISTS].sort((a, b) => a.length - b.length);
  for (const migrations of shortestFirst) await ensurePgliteTemplate(migrations);
  pruneStalePgliteTemplates(TEST_MIGRATION_LISTS);
}

async function buildPostgresTemplates(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect().catch((err: unknown) => {
    const url = new URL(ADMIN_URL);
    throw new Error(`The tests need PostgreSQL at ${url.host} (TEST_POSTGRES_URL; .ci/run starts it): ${err instanceof Error ? err.message : String(err)}`);
  });
  try {
    for (const migrations of POSTGRES_MIGRATION_LISTS) await touchTemplate(admin, await migratedTemplate(admin, ADMIN_URL, migrations));
    await pruneStalePostgresTemplates(admin, POSTGRES_MIGRATION_LISTS);
  } finally {
    await admin.end();
  }
}

export default async function globalSetup(): Promise<void> {
  // A folder of test parts without its suite files would run none of them: fail the run instead.
  checkEveryPartRuns(path.resolve(__dirname, '..'));
  await buildPostgresTemplates();
  await buildPgliteTemplates();
}
