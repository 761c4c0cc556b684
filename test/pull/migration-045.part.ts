import { randomUUID } from 'node:crypto';
import { MIGRATIONS } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { notGrantedIssue } from '../../src/pull/not-granted';
import { migrationsBefore } from '../support/migration-lists';
import { databaseWithMigrations } from '../support/postgres';

/**
 * Migration 045 on a populated store: a task recorded as not granted before the flag existed (a
 * `forbidden` message, no page) is flagged `not_granted`; a task that fetched pages and then met a
 * `forbidden` issue (an `_include` the EHR withheld), and one that said nothing, are not. Only
 * pull_tasks matters, so its rows go in with the foreign-key triggers off. PostgreSQL only: the
 * statement is plain SQL that PGlite, the same engine, runs alike.
 */
it('flags the tasks recorded as not granted before the flag', async () => {
  const { db, close } = await databaseWithMigrations('postgres', migrationsBefore(45));
  try {
    const [leftOut, withheldInclude, plain] = [randomUUID(), randomUUID(), randomUUID()] as const;
    const said = JSON.stringify([{ ...notGrantedIssue(['Condition'], 'system/Patient.read'), pages: 0 }]);
    const forbiddenInclude = JSON.stringify([{ severity: 'warning', code: 'forbidden', text: 'Medication withheld', pages: 1 }]);
    await db.transaction(async (tx) => {
      await tx.query(`SET LOCAL session_replication_role = replica`);
      await tx.query(
        `INSERT INTO pull_tasks (id, pull_id, source_id, resource_type, query_key, request_path, request_params, state, pages, server_messages) VALUES
           ($1, $4, $5, 'Condition', 'Condition', 'Condition', '{}', 'complete', 0, $6::jsonb),
           ($2, $4, $5, 'MedicationRequest', 'MedicationRequest', 'MedicationRequest', '{}', 'complete', 1, $7::jsonb),
           ($3, $4, $5, 'Procedure', 'Procedure', 'Procedure', '{}', 'complete', 0, '[]')`,
        [leftOut, withheldInclude, plain, randomUUID(), randomUUID(), said, forbiddenInclude],
      );
    });
    expect(await migrate(db, MIGRATIONS.filter((m) => m.version <= 45))).toEqual([45]);
    const { rows } = await db.query<{ id: string; not_granted: boolean }>('SELECT id, not_granted FROM pull_tasks');
    expect(Object.fromEntries(rows.map((r) => [r.id, r.not_granted]))).toEqual({ [leftOut]: true, [withheldInclude]: false, [plain]: false });
  } finally {
    await close();
  }
});
