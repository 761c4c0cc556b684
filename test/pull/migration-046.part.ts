import { randomUUID } from 'node:crypto';
import { MIGRATIONS } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { typesAskedBy } from '../../src/pull/not-granted';
import { migrationsBefore } from '../support/migration-lists';
import { databaseWithMigrations } from '../support/postgres';

/**
 * Migration 046 on a populated store: each task recorded before `asked_types` existed gets the types
 * its query asked for, by the same rule new tasks are written with (`typesAskedBy`): a search its
 * type, an `$everything` stream its `_type` list (an empty item dropped), one without `_type`
 * `every type`. Only pull_tasks matters, so its rows go in with the foreign-key triggers off.
 */
it('fills asked_types of the tasks recorded before it as typesAskedBy does', async () => {
  const { db, close } = await databaseWithMigrations('postgres', migrationsBefore(46));
  try {
    const tasks: { id: string; resourceType: string; requestParams: Record<string, string> }[] = [
      { id: randomUUID(), resourceType: 'Condition', requestParams: { patient: 'p1' } },
      { id: randomUUID(), resourceType: '*', requestParams: { _type: 'Observation,Condition,' } },
      { id: randomUUID(), resourceType: '*', requestParams: {} },
    ];
    const [pullId, sourceId] = [randomUUID(), randomUUID()];
    await db.transaction(async (tx) => {
      await tx.query(`SET LOCAL session_replication_role = replica`);
      for (const t of tasks) {
        await tx.query(
          `INSERT INTO pull_tasks (id, pull_id, source_id, resource_type, query_key, request_path, request_params, state)
           VALUES ($1, $2, $3, $4, $6, 'x', $5::jsonb, 'complete')`,
          [t.id, pullId, sourceId, t.resourceType, JSON.stringify(t.requestParams), `query-${t.id}`],
        );
      }
    });
    expect(await migrate(db, MIGRATIONS.filter((m) => m.version <= 46))).toEqual([46]);
    const { rows } = await db.query<{ id: string; asked_types: string[] }>('SELECT id, asked_types FROM pull_tasks');
    const byId = Object.fromEntries(rows.map((r) => [r.id, r.asked_types]));
    expect(byId).toEqual({
      [tasks[0]!.id]: ['Condition'],
      [tasks[1]!.id]: ['Observation', 'Condition'],
      [tasks[2]!.id]: ['every type'],
    });
    for (const t of tasks) expect(byId[t.id]).toEqual(typesAskedBy(t));
  } finally {
    await close();
  }
});
