import { MIGRATIONS } from '../../src/db/migrations';
import { freePort } from '../../drills/support/free-port';
import { createTestDatabase } from '../support/postgres';
import { TEST_REDIS_URL } from '../support/redis-url';
import { spawnService } from '../support/service-process';
import { tempDir } from '../support/temp-dir';

/**
 * A start that cannot be made says why, naming the setting to look at: the real binary as a child
 * process. A database that does not answer names DATABASE_URL; one migrated by a newer release is
 * refused (exit 1) naming the versions.
 */
let dataDir: string;
beforeAll(() => {
  dataDir = tempDir('startup');
});

it('names DATABASE_URL when the database cannot be reached', async () => {
  const port = await freePort();
  const svc = spawnService({ ROLE: 'worker', DATABASE_URL: `postgres://nobody@127.0.0.1:${port}/none`, REDIS_URL: TEST_REDIS_URL, DATA_DIR: dataDir });
  const { code } = await svc.exited;
  expect(code).toBe(1);
  expect(svc.stderrText()).toMatch(/^startup failed: could not open or migrate the PostgreSQL database of DATABASE_URL: .*ECONNREFUSED/m);
});

it('refuses to start on a database migrated by a newer release, naming the versions', async () => {
  const testDb = await createTestDatabase();
  try {
    const highest = Math.max(...MIGRATIONS.map((m) => m.version));
    await testDb.db.query(`INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'newer', 'x')`, [highest + 1]);
    const svc = spawnService({ ROLE: 'worker', DATABASE_URL: testDb.url, REDIS_URL: TEST_REDIS_URL, DATA_DIR: dataDir });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.stderrText()).toContain(
      `startup failed: The database schema is newer than this release: schema_migrations holds version ${highest + 1}, this release knows migrations up to ${highest}`,
    );
    expect(svc.lines.some((l) => l.message === 'service started')).toBe(false);
  } finally {
    await testDb.drop();
  }
});
