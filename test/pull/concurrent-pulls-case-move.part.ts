import { Queue } from 'bullmq';
import { assembleJobId } from '../../queues/pull-flow';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions } from '../../src/redis';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { pauseEndpoint } from '../support/endpoint-pause';
import { intakeForChild } from '../support/intake';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * Two pulls of one case under way at once (a care team added while the first pulls, or another
 * scope): the first to end complete must not move the case to `records_complete` while the other
 * still pulls. That move starts the SLA clock and lets a specialist be assigned, who would open a
 * record without the second care team's part; and the second pull's end, finding the case moved,
 * would not move it again. The last pull to end complete moves it, as a case manager's own move
 * waits for every pull (`refuseRecordsCompleteBeforeBundle`).
 *
 * Real service, PostgreSQL, Redis and two sandbox EHRs; the second is paused by its circuit breaker
 * (a pull's queries wait for a paused endpoint), which holds the second pull under way for as long as
 * the test needs.
 */
let svc: TestService;
let teamA: SandboxServer;
let teamB: SandboxServer;
let endpointA: string;
let endpointB: string;
let cm: string;
let parents: Queue;

const CHILD = { given: 'Ada', family: 'Quill', birthDate: '2016-01-02' } as const;
const recordOf = (team: string) => [
  { resourceType: 'Patient' as const, id: 'p1', name: [{ family: CHILD.family, given: [CHILD.given] }], birthDate: CHILD.birthDate },
  {
    resourceType: 'Condition' as const,
    id: `${team}-asthma`,
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '195967001', display: 'Asthma' }] },
  },
];

interface PullView {
  state: string;
  assembledVersion: number | null;
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '10000' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  [teamA, teamB] = await Promise.all([startSandboxServer({ name: 'team-a', auth: 'none' }), startSandboxServer({ name: 'team-b', auth: 'none' })]);
  await Promise.all([teamA.load(recordOf('a')), teamB.load(recordOf('b'))]);
  endpointA = await registerOpenEndpoint(svc, 'Team A', teamA.baseUrl);
  endpointB = await registerOpenEndpoint(svc, 'Team B', teamB.baseUrl);
  parents = new Queue(QUEUES.assembleCase, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
}, 60_000);

afterAll(async () => {
  await parents.close();
  await Promise.all([svc.stop(), teamA.stop(), teamB.stop()]);
});

async function addSource(caseId: string, endpointId: string): Promise<void> {
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: 'p1' } } })).status).toBe(201);
}

async function startPull(caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(202);
  return ((await res.json()) as { pullId: string }).pullId;
}

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

const caseOf = async (caseId: string): Promise<{ status: string; sla: unknown }> =>
  (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; sla: unknown };

/** Waits until the pull's parent job (finish, assemble, move the case) has completed. */
async function parentDone(pullId: string): Promise<void> {
  await eventually(async () => (await parents.getJob(assembleJobId(pullId, 1)))?.isCompleted() ?? false, (done) => done, 60_000);
}

it('keeps the case collecting_records while another pull runs, and moves it once the last one ends complete', async () => {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild(CHILD.given, CHILD.family, CHILD.birthDate) });
  const { id: caseId } = (await opened.json()) as { id: string };
  await addSource(caseId, endpointA);
  // The first pull, of team A alone, is slow enough to be under way when the second starts.
  teamA.latencyMs = 2000;
  const first = await startPull(caseId);
  // Team B joins and is paused: the second pull, of both teams, waits for it.
  await addSource(caseId, endpointB);
  const resumeB = await pauseEndpoint(svc, endpointB, 120_000);
  const second = await startPull(caseId);
  expect(second).not.toBe(first);
  expect((await pullOf(caseId, first)).state).toMatch(/^(queued|running)$/);
  teamA.latencyMs = 0;

  await parentDone(first);
  expect(await pullOf(caseId, first)).toMatchObject({ state: 'complete', assembledVersion: expect.any(Number) });
  expect((await pullOf(caseId, second)).state).toBe('running');
  // Not records_complete: the SLA clock has not started, and no specialist can be assigned yet.
  expect(await caseOf(caseId)).toMatchObject({ status: 'collecting_records', sla: null });

  // Team B back: the second pull ends complete and moves the case, with both teams' records in.
  await resumeB();
  const ended = await eventually(() => pullOf(caseId, second), (p) => p.state !== 'running' && p.state !== 'queued', 60_000);
  expect(ended.state).toBe('complete');
  await parentDone(second);
  expect((await caseOf(caseId)).status).toBe('records_complete');
  // The version the move names holds both teams' records: assembled after team B's were stored.
  const { rows } = await svc.service.db.query<{ sources: number }>('SELECT count(DISTINCT source_id)::int AS sources FROM raw_resources WHERE case_id = $1', [caseId]);
  expect(rows[0]?.sources).toBe(2);
  expect((await pullOf(caseId, second)).assembledVersion).toBeGreaterThan((await pullOf(caseId, first)).assembledVersion ?? Infinity);
}, 120_000);
