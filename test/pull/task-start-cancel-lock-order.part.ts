import { randomUUID } from 'node:crypto';
import { loadDomainData } from '../../src/cases/domain-data';
import { finishPull } from '../../src/pull/finish-pull';
import { cancelPulls, findPull, findTask, insertPull, markTaskRunning } from '../../src/pull/pull-repository';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';
import { eventually } from '../support/service';

/**
 * A pull cancelled just as its first task starts: the cancel holds the pull's row and then ends its
 * tasks; the task's start must wait for the pull's row before it takes the task's (the order the
 * cancel takes them in). In the other order the two wait on each other and PostgreSQL aborts one
 * (a deadlock: the cancel answered 500, or the task's job failed).
 */
let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
}, 60_000);
afterAll(async () => {
  await t.drop();
});

it('starts no cancelled task and deadlocks with no cancel', async () => {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: 'https://ehr.example.org/fhir', resourceType: 'Observation', path: 'Observation' });

  let releaseCancel: () => void = () => undefined;
  const cancelMayEnd = new Promise<void>((resolve) => (releaseCancel = resolve));
  let pullLocked: () => void = () => undefined;
  const pullIsLocked = new Promise<void>((resolve) => (pullLocked = resolve));
  // The cancel: the pull's row first (as cancelPulls does), then — once the start waits — its tasks.
  const cancel = t.db.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM pulls WHERE id = $1 FOR UPDATE', [pullId]);
    pullLocked();
    await cancelMayEnd;
    return cancelPulls(tx, { pullId }, 'cm-test', 'The family withdrew.');
  });
  await pullIsLocked;
  const start = markTaskRunning(t.db, task.id);
  // The start waits on a lock (the pull's row), then the cancel goes on.
  await eventually(
    async () => (await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]?.n ?? 0,
    (n) => n > 0,
    10_000,
  );
  releaseCancel();
  await expect(cancel).resolves.toMatchObject({ pullIds: [pullId], tasks: 1 });
  await expect(start).resolves.toBe(false);
  expect((await findTask(t.db, task.id))?.state).toBe('cancelled');
});

it('keeps a pull cancelled while its end is being decided: cancelled, not overwritten as complete and assembled', async () => {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: 'https://ehr.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
  await markTaskRunning(t.db, task.id);
  await t.db.query(`UPDATE pull_tasks SET state = 'complete', finished_at = now() WHERE id = $1`, [task.id]);

  // The case manager's cancel holds the pull's row; the flow's parent, finishing the pull, reads it
  // running, and waits for the row to write its end; the cancel commits first.
  const deps = { db: t.db, config: { programTimeZone: 'America/New_York' }, domain: loadDomainData() };
  let finishing: Promise<string> | undefined;
  await t.db.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM pulls WHERE id = $1 FOR UPDATE', [pullId]);
    finishing = finishPull(deps, pullId, { moveCase: false });
    await eventually(
      async () => (await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]?.n ?? 0,
      (n) => n > 0,
      10_000,
    );
    await tx.query(`UPDATE pulls SET state = 'cancelled', finished_at = now() WHERE id = $1`, [pullId]);
  });
  await expect(finishing).resolves.toBe('cancelled');
  expect((await findPull(t.db, pullId))?.state).toBe('cancelled');
  const { rows } = await t.db.query<{ type: string }>(`SELECT type FROM case_events WHERE case_id = $1 AND type LIKE 'pull_%'`, [caseId]);
  expect(rows).toEqual([]);
});
