import type { Database } from '../../src/db/database';
import { migrate, MigrationChecksumError } from '../../src/db/migrator';
import { MIGRATIONS } from '../../src/db/migrations';
import { openDatabase } from '../../src/db/open';
import { createTestDatabase, openBackendDatabase } from '../support/postgres';

/**
 * The store's own tests run on both backends: PostgreSQL (production) and PGlite (embedded default).
 */
describe.each(['postgres', 'pglite'] as const)('database on %s', (backend) => {
  let db: Database;
  let handle: Awaited<ReturnType<typeof openBackendDatabase>> | undefined;

  beforeAll(async () => {
    handle = await openBackendDatabase(backend);
    db = handle.db;
  });

  afterAll(async () => {
    await handle?.close();
  });

  it('reports its backend and answers a ping', async () => {
    expect(db.backend).toBe(backend);
    await expect(db.ping()).resolves.toBeUndefined();
  });

  it('has applied every migration exactly once, and a second run applies nothing', async () => {
    const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    await expect(migrate(db)).resolves.toEqual([]);
  });

  it('refuses to boot when an applied migration was edited', async () => {
    const edited = MIGRATIONS.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited` } : m));
    await expect(migrate(db, edited)).rejects.toBeInstanceOf(MigrationChecksumError);
  });

  it('returns the same value shapes on both backends (int8 as number, date as text, jsonb as object)', async () => {
    const { rows } = await db.query<{ n: number; d: string; j: { a: number[] }; t: Date }>(
      "SELECT 42::bigint AS n, '2026-11-26'::date AS d, '{\"a\":[1,2]}'::jsonb AS j, now() AS t",
    );
    expect(rows[0]).toEqual({ n: 42, d: '2026-11-26', j: { a: [1, 2] }, t: expect.any(Date) });
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await db.query('CREATE TABLE IF NOT EXISTS tx_probe (v int)');
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1)', [1]);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_probe VALUES ($1)', [2]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const { rows } = await db.query<{ v: number }>('SELECT v FROM tx_probe ORDER BY v');
    expect(rows).toEqual([{ v: 1 }]);
  });

  it('counts affected rows of writes', async () => {
    await db.query('CREATE TABLE IF NOT EXISTS count_probe (v int)');
    const inserted = await db.query('INSERT INTO count_probe SELECT generate_series(1, 5)');
    expect(inserted.rowCount).toBe(5);
    const updated = await db.query('UPDATE count_probe SET v = v + 1 WHERE v > $1', [3]);
    expect(updated.rowCount).toBe(2);
  });
});

describe('migrations under concurrency (postgres)', () => {
  it('two processes booting at once apply each migration once', async () => {
    const testDb = await createTestDatabase();
    try {
      const [a, b] = await Promise.all([
        openDatabase({ databaseUrl: testDb.url, dataDir: '/nonexistent' }),
        openDatabase({ databaseUrl: testDb.url, dataDir: '/nonexistent' }),
      ]);
      const { rows } = await a.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0]?.n).toBe(MIGRATIONS.length);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await testDb.drop();
    }
  });
});
