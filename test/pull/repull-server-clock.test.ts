import { randomUUID } from 'node:crypto';
import type { Condition } from 'fhir/r4';
import { loadDomainData } from '../../src/cases/domain-data';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { startPull } from '../../src/pull/pull-service';
import { commitPage, findPull, insertPull, insertTask, lastCompletedQueries, markTaskFinished, type TaskRow } from '../../src/pull/pull-repository';
import { OWN_CLOCK_MARGIN_MS, SERVER_TIME_MARGIN_MS, serverTimeOf } from '../../src/pull/server-time';
import { bullConnectionOptions } from '../../src/redis';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { PullFlowProducer } from '../../queues/pull-flow';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

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

  /** Commits the first and only page of `task`, with the EHR time `serverTime` when given, and completes the task. */
  async function completeWith(task: TaskRow, caseId: string, serverTime?: Date): Promise<void> {
    const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Condition', id: `c-${task.id}` } }] }));
    const entries = pageEntries(scanSearchPage(body, body.length, 'https://ehr.example.org/fhir'));
    await commitPage(t.db, {
      task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: [], ...(serverTime ? { serverTime } : {}),
    });
    await markTaskFinished(t.db, task.id, 'complete', null);
  }

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
    await completeWith(behind, caseId, ehrTime);
    const silent = await insertPullTask(t.db, { caseId, pullId: first.id, name: `silent-${caseId}`, baseUrl: 'https://silent.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
    await completeWith(silent, caseId);
    let bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(keyOf(behind))).toEqual(new Date(ehrTime.getTime() - SERVER_TIME_MARGIN_MS));
    expect(bounds.get(keyOf(silent))).toEqual(new Date(first.createdAt.getTime() - OWN_CLOCK_MARGIN_MS));

    // The same query completes again in a newer pull, the EHR giving no time then: that task decides
    // (never the later-looking of two times read on different clocks).
    const second = await newPull(caseId);
    const again = randomUUID();
    await insertTask(t.db, { id: again, pullId: second.id, sourceId: behind.sourceId, resourceType: 'Condition', queryKey: behind.queryKey, path: 'Condition', params: {}, remotePatientId: null });
    await completeWith({ ...behind, id: again, pullId: second.id }, caseId);
    bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(keyOf(behind))).toEqual(new Date(second.createdAt.getTime() - OWN_CLOCK_MARGIN_MS));
  });
});

describe('a re-pull from an EHR whose clock is behind ours', () => {
  /** The care team's clock is an hour behind ours. */
  const EHR_BEHIND_MS = 3600_000;
  let svc: TestService;
  let teamA: SandboxServer;
  let producer: PullFlowProducer;

  beforeAll(async () => {
    [svc, teamA] = await Promise.all([
      startTestService({}, FAST_CLIENT),
      startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', now: () => Date.now() - EHR_BEHIND_MS }),
    ]);
    await teamA.load(fixtureBundle('care-team-a'));
    producer = new PullFlowProducer(bullConnectionOptions(svc.config.redisUrl), svc.config.queuePrefix, svc.config.pullJobBackoffMs);
  }, 60_000);
  afterAll(async () => {
    await producer.close();
    await Promise.all([svc.stop(), teamA.stop()]);
  });

  const stateOf = async (pullId: string): Promise<string | undefined> =>
    (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state;
  const ended = (state: string | undefined): boolean => state === 'complete' || state === 'partial' || state === 'failed';

  it('finds a record the care team changed after the last pull, though by our clock it changed before', async () => {
    const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
    const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
    const endpointId = ((await res.json()) as { id: string }).id;
    const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
    expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
    const deps = { db: svc.service.db, pulls: producer, config: { programTimeZone: svc.config.programTimeZone }, domain: loadDomainData() };
    const actor = { sub: 'test-repull', roles: [] };

    const asked = Date.now();
    const { pullId: firstId } = await startPull(deps, caseId, { types: ['Condition'] }, actor);
    expect(await eventually(() => stateOf(firstId), ended)).toBe('complete');
    const answered = Date.now();
    // The EHR's time of the query's first page was kept, by its clock.
    const { rows: firstTasks } = await svc.service.db.query<{ server_time: Date | null }>('SELECT server_time FROM pull_tasks WHERE pull_id = $1', [firstId]);
    expect(firstTasks).toHaveLength(1);
    const ehrTime = firstTasks[0]?.server_time?.getTime() ?? 0;
    expect(ehrTime).toBeGreaterThanOrEqual(asked - EHR_BEHIND_MS - 1000);
    expect(ehrTime).toBeLessThanOrEqual(answered - EHR_BEHIND_MS + 1000);

    // The care team records a diagnosis after the pull: the EHR stamps it an hour before our clock's now.
    const condition: Condition = {
      resourceType: 'Condition',
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '195967001', display: 'Asthma' }] },
      subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
      recordedDate: '2026-11-20',
    };
    const conditionId = (await teamA.load([condition], { preserveLastUpdated: false })).ids.Condition?.[0] ?? '';
    expect(teamA.read('Condition', conditionId)?.meta?.lastUpdated).toBeDefined();

    const { pullId: againId } = await startPull(deps, caseId, { incremental: true, types: ['Condition'] }, actor);
    expect(await eventually(() => stateOf(againId), ended)).toBe('complete');
    // Found, and asked for from the EHR's time of the last pull's first page less a minute.
    const { rows: stored } = await svc.service.db.query<{ pull_id: string }>(
      "SELECT pull_id FROM raw_resources WHERE case_id = $1 AND resource_type = 'Condition' AND remote_id = $2",
      [caseId, conditionId],
    );
    expect(stored).toEqual([{ pull_id: againId }]);
    const { rows: tasks } = await svc.service.db.query<{ request_params: Record<string, string> }>('SELECT request_params FROM pull_tasks WHERE pull_id = $1', [againId]);
    expect(tasks.map((task) => task.request_params._since ?? task.request_params._lastUpdated)).toEqual([
      expect.stringMatching(new RegExp(`^(gt)?${new Date(ehrTime - SERVER_TIME_MARGIN_MS).toISOString()}$`)),
    ]);
  }, 120_000);
});
