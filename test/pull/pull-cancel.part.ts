import { openFixtureCase, startCareTeamAWorld, startCasePull, type CareTeamAWorld } from '../support/sandbox-case';
import { Queue } from 'bullmq';
import { bullConnectionOptions } from '../../src/redis';
import type { SandboxServer } from '../../src/sandbox';
import { QUEUES } from '../../queues/names';
import { assembleJobId } from '../../queues/pull-flow';
import { pagesStoredFor } from '../support/pull-task';
import { eventually, FAST_CLIENT, type TestService } from '../support/service';

/**
 * A case manager stops a record pull (the wrong child was matched, the EHR asked us to back off, the
 * family withdrew): the pull ends `cancelled` at once, its queries stop at their next page and store
 * nothing more, documents not fetched yet are not fetched, no bundle is assembled from it, and the
 * timeline says who and why. Ending the case cancels its pulls the same way. Real service, Redis,
 * PostgreSQL and a sandbox EHR slowed down so that the pull is still running when it is cancelled.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;
let parents: Queue;

beforeAll(async () => {
  world = await startCareTeamAWorld({}, FAST_CLIENT, { pageSize: 5, maxConcurrency: 4 });
  ({ svc, server, endpointId, cm } = world);
  parents = new Queue(QUEUES.assembleCase, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
}, 60_000);

afterAll(async () => {
  await parents.close();
  await world?.stop();
});

interface PullView {
  state: string;
  cancelled: { by: string; reason: string } | null;
  totals: { pages: number; tasks: number; tasksComplete: number };
  sources: { state: string; resourceTypes: { state: string }[] }[];
}

async function openCase(): Promise<string> {
  return (await openFixtureCase(svc, cm, endpointId)).caseId;
}

const startPull = (caseId: string): Promise<string> => startCasePull(svc, cm, caseId);

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

const cancel = (caseId: string, pullId: string, body: unknown = {}, token = cm): Promise<Response> =>
  svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/cancel`, { token, body });

/** A slow EHR (every request 150 ms, 5 resources a page): the pull runs for seconds. */
async function runningPull(caseId: string): Promise<string> {
  server.latencyMs = 150;
  const pullId = await startPull(caseId);
  await eventually(() => pullOf(caseId, pullId), (p) => p.state === 'running' && p.totals.pages >= 2, 30_000);
  return pullId;
}

/** The flow's parent job has run (every child job ended): nothing of the pull runs any more. */
async function flowSettled(pullId: string): Promise<void> {
  await eventually(() => parents.getJobState(assembleJobId(pullId, 1)), (state) => state === 'completed', 30_000);
}

async function count(sql: string, pullId: string): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>(sql, [pullId]);
  return rows[0]?.n ?? -1;
}

const pagesOf = (pullId: string): Promise<number> => pagesStoredFor(svc.service.db, pullId);

const bundlesOf = (pullId: string): Promise<number> => count(`SELECT count(*)::int AS n FROM case_bundles WHERE trigger LIKE 'pull:' || $1 || ':%'`, pullId);

interface CaseDetail {
  status: string;
  timeline: { type: string; reason: string | null; actorSub: string; data: Record<string, unknown> | null }[];
}
const caseOf = async (caseId: string): Promise<CaseDetail> => (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as CaseDetail;

it('cancels a running pull: its queries stop at the next page, nothing more is stored, no bundle is assembled', async () => {
  const caseId = await openCase();
  const pullId = await runningPull(caseId);

  const res = await cancel(caseId, pullId, { reason: 'Wrong child matched at care team A' });
  expect(res.status).toBe(200);
  const cancelled = (await res.json()) as PullView;
  expect(cancelled.state).toBe('cancelled');
  expect(cancelled.cancelled).toEqual({ by: expect.any(String), reason: 'Wrong child matched at care team A' });
  const pagesAtCancel = await pagesOf(pullId);
  expect(pagesAtCancel).toBeGreaterThanOrEqual(2);
  const requestsAtCancel = server.requestCount();

  await flowSettled(pullId);
  // Not one page more was stored (a page in flight when it was cancelled is dropped), and at most one
  // request per query was still under way (the page being read, and the next one read ahead).
  expect(await pagesOf(pullId)).toBe(pagesAtCancel);
  expect(server.requestCount() - requestsAtCancel).toBeLessThanOrEqual(2 * cancelled.totals.tasks);
  expect(await count(`SELECT count(*)::int AS n FROM pull_tasks WHERE pull_id = $1 AND state IN ('queued', 'running')`, pullId)).toBe(0);
  expect(await count(`SELECT count(*)::int AS n FROM attachments a JOIN pull_tasks t ON t.id = a.task_id WHERE t.pull_id = $1 AND a.state = 'pending'`, pullId)).toBe(0);
  expect(await bundlesOf(pullId)).toBe(0);

  const after = await pullOf(caseId, pullId);
  expect(after.state).toBe('cancelled');
  expect(after.totals.tasksComplete).toBeLessThan(after.totals.tasks);
  expect(after.sources.map((s) => s.state)).toEqual(['cancelled']);
  const detail = await caseOf(caseId);
  expect(detail.status).toBe('collecting_records');
  const event = detail.timeline.find((e) => e.type === 'pull_cancelled');
  expect(event?.reason).toBe('Wrong child matched at care team A');
  expect(event?.data).toMatchObject({ pullId });

  // Cancelling again answers the same; a cancelled pull is not retried (a new pull is started instead).
  const again = await cancel(caseId, pullId);
  expect(again.status).toBe(200);
  expect(((await again.json()) as PullView).state).toBe('cancelled');
  expect((await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm })).status).toBe(409);
}, 90_000);

it('cancelling the case cancels its running pull', async () => {
  const caseId = await openCase();
  const pullId = await runningPull(caseId);
  const res = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew' } });
  expect(res.status).toBe(200);
  const pull = await pullOf(caseId, pullId);
  expect(pull.state).toBe('cancelled');
  expect(pull.cancelled?.reason).toBe('The case was cancelled');
  const pages = await pagesOf(pullId);
  await flowSettled(pullId);
  expect(await pagesOf(pullId)).toBe(pages);
  expect(await bundlesOf(pullId)).toBe(0);
  const detail = await caseOf(caseId);
  expect(detail.status).toBe('cancelled');
  expect(detail.timeline.filter((e) => e.type === 'pull_cancelled').map((e) => e.data)).toEqual([expect.objectContaining({ pullId })]);
}, 90_000);

it('refuses to cancel a pull that has ended, a pull of another case, and bad requests', async () => {
  server.latencyMs = 0;
  const caseId = await openCase();
  const pullId = await startPull(caseId);
  const done = await eventually(() => pullOf(caseId, pullId), (p) => ['complete', 'partial', 'failed'].includes(p.state), 60_000);
  expect(done.state).toBe('complete');

  const ended = await cancel(caseId, pullId);
  expect(ended.status).toBe(409);
  expect(((await ended.json()) as { detail: string }).detail).toMatch(/this one is complete/);
  expect((await pullOf(caseId, pullId)).state).toBe('complete');

  const otherCase = await openCase();
  expect((await cancel(otherCase, pullId)).status).toBe(404);
  expect((await cancel(caseId, pullId, {}, await svc.token('specialist'))).status).toBe(403);
  const badReason = await cancel(caseId, pullId, { reason: 42 });
  expect(badReason.status).toBe(400);
  expect(JSON.stringify(await badReason.json())).toMatch(/reason/);
  expect((await cancel(caseId, pullId, { reason: 'x', force: true })).status).toBe(400);
}, 90_000);
