import type { Queryable } from '../../src/db/database';
import { migrate } from '../../src/db/migrator';
import { MIGRATIONS } from '../../src/db/migrations';
import { checkSchemaVersions, schemaReadinessCheck, SchemaMismatchError } from '../../src/db/schema-version';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

/**
 * A database migrated by a newer release (schema_migrations holds a version this build has no
 * migration for) is refused at boot, naming the versions, and fails the readiness check, which reads
 * schema_migrations at most once per cache period. Real PostgreSQL.
 */
let testDb: TestDatabase;
const highest = Math.max(...MIGRATIONS.map((m) => m.version));

beforeEach(async () => {
  testDb = await createTestDatabase();
});
afterEach(async () => {
  await testDb.drop();
});

async function addNewerVersions(...versions: number[]): Promise<void> {
  for (const v of versions) await testDb.db.query(`INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'newer', 'x')`, [v]);
}

it('migrate refuses a database with versions above the known ones, naming them and the highest known', async () => {
  await addNewerVersions(highest + 2, highest + 1);
  const refused = migrate(testDb.db);
  await expect(refused).rejects.toBeInstanceOf(SchemaMismatchError);
  await expect(refused).rejects.toThrow(
    `schema_migrations holds version ${highest + 1}, ${highest + 2}, this release knows migrations up to ${highest}`,
  );
});

it('the readiness check passes on the known set, fails on a newer one, and caches its answer', async () => {
  await expect(checkSchemaVersions(testDb.db)).resolves.toBeUndefined();
  let queries = 0;
  const counted: Queryable = {
    query<R>(sql: string, params?: readonly unknown[]) {
      queries += 1;
      return testDb.db.query<R>(sql, params);
    },
    exec: (sql) => testDb.db.exec(sql),
  };
  const cached = schemaReadinessCheck(counted, 60_000);
  await cached();
  await addNewerVersions(highest + 1);
  await cached(); // the cached answer
  expect(queries).toBe(1);
  await expect(schemaReadinessCheck(testDb.db, 0)()).rejects.toThrow(`version ${highest + 1}`);
  // A row of this release removed by hand is named too.
  await testDb.db.query('DELETE FROM schema_migrations WHERE version IN ($1, $2)', [highest + 1, highest]);
  await expect(checkSchemaVersions(testDb.db)).rejects.toThrow(`lacks migration ${highest}`);
});
