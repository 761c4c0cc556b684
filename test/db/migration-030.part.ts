import { randomUUID } from 'node:crypto';
import { insertCaseEvent } from '../../src/db/case-repository';
import type { Database } from '../../src/db/database';
import { MIGRATIONS } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { databaseWithMigrations, type Backend } from '../support/postgres';
import { migrationsBefore } from '../support/migration-lists';
import { insertTestCase } from '../support/pull-task';

/**
 * Migration 030 on a populated store, on both backends: a case's SLA is judged at the first time its
 * clock stopped after records were complete (its first signature, or the end of the case), not at
 * the last transition into its current status (migration 025), and a case being corrected when the
 * service was upgraded keeps that stop with no due dates.
 */
const day = (n: number): Date => new Date(Date.UTC(2026, 2, n, 15));

async function caseWith(db: Database, status: string, history: readonly [string, string, Date][], stoppedAt: Date | null): Promise<string> {
  const id = randomUUID();
  await insertTestCase(db, id, status, day(1));
  for (const [from, to, at] of history) await insertCaseEvent(db, { caseId: id, type: 'transition', actorSub: 'm030', fromStatus: from, toStatus: to, at });
  await db.query(
    `UPDATE cases SET records_complete_at = $2, sla_stopped_at = $3, sla_target_due = $4, sla_limit_due = $4 WHERE id = $1`,
    [id, day(2), stoppedAt, stoppedAt === null ? day(9) : null],
  );
  return id;
}

const row = async (db: Database, id: string) =>
  (await db.query<{ stopped: Date | null; target: Date | null; limit: Date | null }>('SELECT sla_stopped_at AS stopped, sla_target_due AS target, sla_limit_due AS limit FROM cases WHERE id = $1', [id])).rows[0];

describe.each<Backend>(['postgres', 'pglite'])('migration 030 (%s)', (backend) => {
  it('judges a case at its first stop after records were complete', async () => {
    const { db, close } = await databaseWithMigrations(backend, migrationsBefore(30));
    try {
      const toRecords: [string, string, Date] = ['collecting_records', 'records_complete', day(2)];
      // Signed on the 5th, delivered on the 6th, closed on the 1st of April: 025 took April 1st.
      const closed = await caseWith(db, 'closed', [toRecords, ['records_complete', 'assigned', day(3)], ['assigned', 'in_review', day(3)], ['in_review', 'report_signed', day(5)], ['report_signed', 'delivered', day(6)], ['delivered', 'closed', day(32)]], day(32));
      // Signed on the 5th, reopened for correction on the 13th (in review when upgraded, its clock running again).
      const correcting = await caseWith(db, 'in_review', [toRecords, ['records_complete', 'assigned', day(3)], ['assigned', 'in_review', day(3)], ['in_review', 'report_signed', day(5)], ['report_signed', 'in_review', day(13)]], null);
      // Still in review, never signed: its clock runs.
      const running = await caseWith(db, 'in_review', [toRecords, ['records_complete', 'assigned', day(3)], ['assigned', 'in_review', day(3)]], null);
      // Back to collecting records before (records complete again on the 2nd), cancelled on the 4th.
      const cancelled = await caseWith(db, 'cancelled', [['collecting_records', 'records_complete', day(1)], ['records_complete', 'collecting_records', day(1)], toRecords, ['records_complete', 'cancelled', day(4)]], day(4));

      expect(await migrate(db, MIGRATIONS.filter((m) => m.version <= 30))).toEqual([30]);
      expect(await row(db, closed)).toEqual({ stopped: day(5), target: null, limit: null });
      expect(await row(db, correcting)).toEqual({ stopped: day(5), target: null, limit: null });
      expect(await row(db, running)).toEqual({ stopped: null, target: day(9), limit: day(9) });
      expect(await row(db, cancelled)).toEqual({ stopped: day(4), target: null, limit: null });
    } finally {
      await close();
    }
  });
});
