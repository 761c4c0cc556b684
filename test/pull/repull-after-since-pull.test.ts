import { randomUUID } from 'node:crypto';
import type { Condition } from 'fhir/r4';
import { loadDomainData } from '../../src/cases/domain-data';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { startPull } from '../../src/pull/pull-service';
import { commitPage, insertPull, insertTask, lastCompletedQueries, markTaskFinished, type TaskRow } from '../../src/pull/pull-repository';
import { SERVER_TIME_MARGIN_MS } from '../../src/pull/server-time';
import { bullConnectionOptions } from '../../src/redis';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { PullFlowProducer } from '../../queues/pull-flow';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertPullTask, insertTestCase } from '../support/pull-task';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

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

  async function completeWith(task: TaskRow, caseId: string, serverTime: Date): Promise<void> {
    const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: [] }));
    const entries = pageEntries(scanSearchPage(body, body.length, 'https://ehr.example.org/fhir'));
    await commitPage(t.db, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: [], serverTime });
    await markTaskFinished(t.db, task.id, 'complete', null);
  }

  it('is not the time of a query that asked only for what changed after an explicit since', async () => {
    const caseId = randomUUID();
    await insertTestCase(t.db, caseId);
    const full = randomUUID();
    await insertPull(t.db, { id: full, caseId, since: null, types: null, requestedBy: 'test' });
    const task = await insertPullTask(t.db, { caseId, pullId: full, name: `ehr-${caseId}`, baseUrl: 'https://ehr.example.org/fhir', resourceType: 'Condition', path: 'Condition' });
    const fullTime = new Date('2026-11-01T10:00:00Z');
    await completeWith(task, caseId, fullTime);

    // The case manager pulls what changed since Nov 5 (the EHR said it added documents then): Nov 1–5 is not asked for.
    const sincePull = randomUUID();
    await insertPull(t.db, { id: sincePull, caseId, since: new Date('2026-11-05T00:00:00Z'), types: ['Condition'], requestedBy: 'test' });
    const sinceTask = randomUUID();
    await insertTask(t.db, {
      id: sinceTask, pullId: sincePull, sourceId: task.sourceId, resourceType: 'Condition', queryKey: task.queryKey, path: 'Condition',
      params: { _lastUpdated: 'gt2026-11-05T00:00:00.000Z' }, remotePatientId: null,
    });
    await completeWith({ ...task, id: sinceTask, pullId: sincePull }, caseId, new Date('2026-11-06T10:00:00Z'));

    // The next re-pull starts where the full run left off, not after the gap.
    const bounds = await lastCompletedQueries(t.db, caseId);
    expect(bounds.get(`${task.sourceId}|${task.queryKey}|`)).toEqual(new Date(fullTime.getTime() - SERVER_TIME_MARGIN_MS));
  });
});

describe("a specialist's re-pull after a case manager's pull with an explicit since", () => {
  const DAY = 24 * 3600_000;
  /** The care team's clock: set by the test, days behind ours (so the HTTP Date, by our clock, is never the earlier). */
  let ehrNow = Date.now() - 10 * DAY;
  let svc: TestService;
  let teamA: SandboxServer;
  let producer: PullFlowProducer;

  beforeAll(async () => {
    [svc, teamA] = await Promise.all([
      startTestService({}, FAST_CLIENT),
      startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', now: () => ehrNow }),
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

  it('finds a record the care team changed between the last full pull and that since', async () => {
    const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
    const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
    const endpointId = ((await res.json()) as { id: string }).id;
    const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
    expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
    const deps = { db: svc.service.db, pulls: producer, config: { programTimeZone: svc.config.programTimeZone }, domain: loadDomainData() };
    const actor = { sub: 'test-repull', roles: [] };

    // Day 0: the first pull, in full.
    const { pullId: firstId } = await startPull(deps, caseId, { types: ['Condition'] }, actor);
    expect(await eventually(() => stateOf(firstId), ended)).toBe('complete');

    // Day 1: the care team records a diagnosis.
    ehrNow += DAY;
    const condition: Condition = {
      resourceType: 'Condition',
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code: '195967001', display: 'Asthma' }] },
      subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
      recordedDate: '2026-11-20',
    };
    const conditionId = (await teamA.load([condition], { preserveLastUpdated: false })).ids.Condition?.[0] ?? '';
    const storedFor = async (): Promise<string[]> =>
      (await svc.service.db.query<{ pull_id: string }>(
        "SELECT pull_id FROM raw_resources WHERE case_id = $1 AND resource_type = 'Condition' AND remote_id = $2",
        [caseId, conditionId],
      )).rows.map((r) => r.pull_id);

    // Day 2: the case manager pulls what changed in the last hour: the new diagnosis is older, not asked for.
    ehrNow += DAY;
    const { pullId: sinceId } = await startPull(deps, caseId, { since: new Date(ehrNow - 3600_000).toISOString(), types: ['Condition'] }, actor);
    expect(await eventually(() => stateOf(sinceId), ended)).toBe('complete');
    expect(await storedFor()).toEqual([]);

    // The specialist's re-pull must find it: the since pull did not cover day 1.
    const { pullId: againId } = await startPull(deps, caseId, { incremental: true, types: ['Condition'] }, actor);
    expect(await eventually(() => stateOf(againId), ended)).toBe('complete');
    expect(await storedFor()).toEqual([againId]);
  }, 120_000);
});
