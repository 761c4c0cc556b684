import { randomUUID } from 'node:crypto';
import { findPull, insertPull, insertTask, lastCompletedQueries, type TaskRow } from '../../src/pull/pull-repository';
import { OWN_CLOCK_MARGIN_MS, SERVER_TIME_MARGIN_MS, serverTimeOf } from '../../src/pull/server-time';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';
import { completeTaskPage, newCondition, startRepullWorld, type RepullWorld } from './repull-support';

/**
 * An incremental re-pull asks each query for what changed since it last completed, and the EHR
 * compares that bound with the `meta.lastUpdated` it stamps with its own clock: so the bound is taken
 * from the EHR's clock (the time it gave with the query's first page, searchset `meta.lastUpdated` or
 * HTTP `Date`), ours only where it gave none, each less a margin.
 */

describe('the EHR time of a first page', () => {
  const page = (lastUpdated: unknown, date?: string) => ({ envelope: { resourceType: 'Bundle' as const, type: 'searchset' as const, meta: { lastUpdated } as { lastUpdated?: string } }, ...(date ? { date } : {}) });

  it("is the searchset's meta.lastUpdated or the response's Date, the earlier of the two, and nothing that does not read as a time", () => {
    expect(serverTimeOf(page('2026-11-03T09:15:07.250Z'))).toEqual(new Date('2026-11-03T09:15:07.250Z'));
    expect(serverTimeOf(page(undefined, 'Tue, 03 Nov 2026 09:15:07 GMT'))).toEqual(new Date('2026-11-03T09:15:07Z'));
    expect(serverTimeOf(page('2026-11-03T10:15:07+01:00', 'Tue, 03 Nov 2026 09:15:08 GMT'))).toEqual(new Date('2026-11-03T09:15:07Z'));
    expect(serverTimeOf(page('2026-11-03T09:15:09Z', 'Tue, 03 Nov 2026 09:15:08 GMT'))).toEqual(new Date('2026-11-03T09:15:08Z'));
    expect(serverTimeOf(page('2026-11-03', 'not a date'))).toBeUndefined();
    expect(serverTimeOf(page(20261103))).toBeUndefined();
    expect(serverTimeOf(page(undefined))).toBeUndefined();
  });
});

describe('the lower bound of a re-pull (PostgreSQL)', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  }, 60_000);
  afterAll(async () => {
    await t.drop();
  });

  async function newPull(caseId: string): Promise<{ id: string; createdAt: Date }> {
    const id = randomUUID();
    await insertPull(t.db, { id, caseId, since: null, types: null, requestedBy: 'test' });
    return { id, createdAt: (await findPull(t.db, id))?.createdAt ?? new Date(0) };
  }

  it("is the EHR's time of the query's first page less a minute; our pull's start less 15 minutes where the EHR gave none; the newest complete task's", async () => {
    const caseId = randomUUID();
    await insertTestCase(t.db, caseId);
    const first = await newPull(caseId);
    const keyOf = (task: TaskRow): string => `${task.sourceId}|${task.queryKey}|`;

    // An EHR whose clock is two hours behind ours, and one that gave no time.
    const behind = await insertPullTask(t.db, { caseId, pullId: first.id, name: `behind-${caseId}`, baseUrl: 'https://behind.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
    const ehrTime = new Date(Date.now() - 2 * 3600_000);
    await completeTaskPage(t.db, behind, caseId, { serverTime: ehrTime });
    const silent = await insertPullTask(t.db, { caseId, pullId: first.id, name: `silent-${caseId}`, baseUrl: 'https://silent.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
    await completeTaskPage(t.db, silent, caseId);
    let bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(keyOf(behind))).toEqual(new Date(ehrTime.getTime() - SERVER_TIME_MARGIN_MS));
    expect(bounds.get(keyOf(silent))).toEqual(new Date(first.createdAt.getTime() - OWN_CLOCK_MARGIN_MS));

    // The same query completes again in a newer pull, the EHR giving no time then: that task decides
    // (never the later-looking of two times read on different clocks).
    const second = await newPull(caseId);
    const again = randomUUID();
    await insertTask(t.db, { id: again, pullId: second.id, sourceId: behind.sourceId, resourceType: 'Condition', queryKey: behind.queryKey, path: 'Condition', params: {}, remotePatientId: null });
    await completeTaskPage(t.db, { ...behind, id: again, pullId: second.id }, caseId);
    bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(keyOf(behind))).toEqual(new Date(second.createdAt.getTime() - OWN_CLOCK_MARGIN_MS));
  });
});

describe('a re-pull from an EHR whose clock is behind ours', () => {
  /** The care team's clock is an hour behind ours. */
  const EHR_BEHIND_MS = 3600_000;
  let world: RepullWorld;

  beforeAll(async () => {
    world = await startRepullWorld(() => Date.now() - EHR_BEHIND_MS);
  }, 60_000);
  afterAll(async () => {
    await world.stop();
  });

  it('finds a record the care team changed after the last pull, though by our clock it changed before', async () => {
    const caseId = await world.openCase();
    const asked = Date.now();
    const first = await world.pull(caseId, { types: ['Condition'] });
    expect(first.state).toBe('complete');
    const answered = Date.now();
    // The EHR's time of the query's first page was kept, by its clock.
    const { rows: firstTasks } = await world.svc.service.db.query<{ server_time: Date | null }>("SELECT server_time FROM pull_tasks WHERE pull_id = $1 AND query_key <> 'Patient'", [first.pullId]);
    expect(firstTasks).toHaveLength(1);
    const ehrTime = firstTasks[0]?.server_time?.getTime() ?? 0;
    expect(ehrTime).toBeGreaterThanOrEqual(asked - EHR_BEHIND_MS - 1000);
    expect(ehrTime).toBeLessThanOrEqual(answered - EHR_BEHIND_MS + 1000);

    // The care team records a diagnosis after the pull: the EHR stamps it an hour before our clock's now.
    const conditionId = (await world.teamA.load([newCondition()], { preserveLastUpdated: false })).ids.Condition?.[0] ?? '';
    expect(world.teamA.read('Condition', conditionId)?.meta?.lastUpdated).toBeDefined();

    const again = await world.pull(caseId, { incremental: true, types: ['Condition'] });
    expect(again.state).toBe('complete');
    // Found, and asked for from the EHR's time of the last pull's first page less a minute.
    expect(await world.storedBy(caseId, 'Condition', conditionId)).toEqual([again.pullId]);
    const { rows: tasks } = await world.svc.service.db.query<{ request_params: Record<string, string> }>("SELECT request_params FROM pull_tasks WHERE pull_id = $1 AND query_key <> 'Patient'", [again.pullId]);
    expect(tasks.map((task) => task.request_params._since ?? task.request_params._lastUpdated)).toEqual([
      expect.stringMatching(new RegExp(`^(gt)?${new Date(ehrTime - SERVER_TIME_MARGIN_MS).toISOString()}$`)),
    ]);
  }, 120_000);
});
