import { randomUUID } from 'node:crypto';
import { insertPull, insertTask, lastCompletedQueries } from '../../src/pull/pull-repository';
import { SERVER_TIME_MARGIN_MS } from '../../src/pull/server-time';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertPullTask, insertTestCase } from '../support/pull-task';
import { completeTaskPage, newCondition, startRepullWorld, type RepullWorld } from './repull-support';

/**
 * A specialist's re-pull asks each query only for what changed since the same query last completed
 * (`_lastUpdated=gt…`, https://hl7.org/fhir/R4/search.html#lastUpdated; `_since` for `$everything`,
 * https://hl7.org/fhir/R4/patient-operation-everything.html). That is right only when the completed
 * query covered everything until then. A case manager's pull with an explicit `since` did not: its
 * queries asked only for what changed after that instant, so what changed between the last full (or
 * chained incremental) run and that instant was never asked for. Taken as the bound, it made every
 * later re-pull skip that window: records the care team changed in it never reached the case.
 */

describe('the lower bound of a re-pull, after a pull with an explicit since (PostgreSQL)', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  }, 60_000);
  afterAll(async () => {
    await t.drop();
  });

  it('is not the time of a query that asked only for what changed after an explicit since', async () => {
    const caseId = randomUUID();
    await insertTestCase(t.db, caseId);
    const full = randomUUID();
    await insertPull(t.db, { id: full, caseId, since: null, types: null, requestedBy: 'test' });
    const task = await insertPullTask(t.db, { caseId, pullId: full, name: `ehr-${caseId}`, baseUrl: 'https://ehr.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
    const fullTime = new Date('2026-11-01T10:00:00Z');
    await completeTaskPage(t.db, task, caseId, { serverTime: fullTime, empty: true });

    // The case manager pulls what changed since Nov 5 (the EHR said it added documents then): Nov 1–5 is not asked for.
    const sincePull = randomUUID();
    await insertPull(t.db, { id: sincePull, caseId, since: new Date('2026-11-05T00:00:00Z'), types: ['Condition'], requestedBy: 'test' });
    const sinceTask = randomUUID();
    await insertTask(t.db, {
      id: sinceTask, pullId: sincePull, sourceId: task.sourceId, resourceType: 'Condition', queryKey: task.queryKey, path: 'Condition',
      params: { _lastUpdated: 'gt2026-11-05T00:00:00.000Z' }, remotePatientId: null,
    });
    await completeTaskPage(t.db, { ...task, id: sinceTask, pullId: sincePull }, caseId, { serverTime: new Date('2026-11-06T10:00:00Z'), empty: true });

    // The next re-pull starts where the full run left off, not after the gap.
    const bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(`${task.sourceId}|${task.queryKey}|`)).toEqual(new Date(fullTime.getTime() - SERVER_TIME_MARGIN_MS));
  });
});

describe("a specialist's re-pull after a case manager's pull with an explicit since", () => {
  const DAY = 24 * 3600_000;
  /** The care team's clock: set by the test, days behind ours (so the HTTP Date, by our clock, is never the earlier). */
  let ehrNow = Date.now() - 10 * DAY;
  let world: RepullWorld;

  beforeAll(async () => {
    world = await startRepullWorld(() => ehrNow);
  }, 60_000);
  afterAll(async () => {
    await world.stop();
  });

  it('finds a record the care team changed between the last full pull and that since', async () => {
    const caseId = await world.openCase();

    // Day 0: the first pull, in full.
    expect((await world.pull(caseId, { types: ['Condition'] })).state).toBe('complete');

    // Day 1: the care team records a diagnosis.
    ehrNow += DAY;
    const conditionId = (await world.teamA.load([newCondition()], { preserveLastUpdated: false })).ids.Condition?.[0] ?? '';

    // Day 2: the case manager pulls what changed in the last hour: the new diagnosis is older, not asked for.
    ehrNow += DAY;
    expect((await world.pull(caseId, { since: new Date(ehrNow - 3600_000).toISOString(), types: ['Condition'] })).state).toBe('complete');
    expect(await world.storedBy(caseId, 'Condition', conditionId)).toEqual([]);

    // The specialist's re-pull must find it: the since pull did not cover day 1.
    const again = await world.pull(caseId, { incremental: true, types: ['Condition'] });
    expect(again.state).toBe('complete');
    expect(await world.storedBy(caseId, 'Condition', conditionId)).toEqual([again.pullId]);
  }, 120_000);
});
