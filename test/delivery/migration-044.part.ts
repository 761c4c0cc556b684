import { randomUUID } from 'node:crypto';
import { MIGRATIONS } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { EARLIER_IN_DOUBT_REVIEW } from '../../src/delivery/delivery-repository';
import { migrationsBefore } from '../support/migration-lists';
import { databaseWithMigrations, type Backend } from '../support/postgres';

/**
 * Migration 044 on a populated store, on both backends: a delivery already waiting in review on an
 * earlier version in doubt is given the code `earlier-in-doubt` (its reason says so), one waiting for
 * another cause, and one no longer in review whose old reason said the same, are not. Only the
 * deliveries table matters here, so its rows go in with the foreign-key triggers off
 * (`session_replication_role = replica`) instead of a case, a signed version and a recipient each.
 */
describe.each<Backend>(['postgres', 'pglite'])('migration 044 (%s)', (backend) => {
  it('codes the deliveries waiting on an earlier version in doubt', async () => {
    const { db, close } = await databaseWithMigrations(backend, migrationsBefore(44));
    try {
      const [waiting, otherCause, delivered] = [randomUUID(), randomUUID(), randomUUID()] as const;
      const caseId = randomUUID();
      const inDoubt = `Version 1 of the report ${EARLIER_IN_DOUBT_REVIEW} (its write was sent, its answer never came) and could not be confirmed there.`;
      await db.transaction(async (tx) => {
        await tx.query(`SET LOCAL session_replication_role = replica`);
        await tx.query(
          `INSERT INTO deliveries (id, case_id, recipient_id, version, state, review_reason) VALUES
             ($1, $4, $5, 2, 'needs_review', $7), ($2, $4, $6, 2, 'needs_review', 'The child was not found exactly once in the referring EHR.'), ($3, $4, $5, 3, 'delivered', $7)`,
          [waiting, otherCause, delivered, caseId, randomUUID(), randomUUID(), inDoubt],
        );
      });
      expect(await migrate(db, MIGRATIONS.filter((m) => m.version <= 44))).toEqual([44]);
      const { rows } = await db.query<{ id: string; review_code: string | null }>('SELECT id, review_code FROM deliveries');
      const codes = new Map(rows.map((r) => [r.id, r.review_code]));
      expect(Object.fromEntries(codes)).toEqual({ [waiting]: 'earlier-in-doubt', [otherCause]: null, [delivered]: null });
    } finally {
      await close();
    }
  });
});
