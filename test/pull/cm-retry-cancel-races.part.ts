import { openFixtureCase, startCareTeamAWorld, startCasePull, type CareTeamAWorld } from '../support/sandbox-case';
import type { SandboxServer } from '../../src/sandbox';
import { eventually, FAST_CLIENT, type TestService } from '../support/service';

/**
 * What a case manager's clicks on a pull meet when something else happens at the same moment: a
 * retry asked twice at once (a double click), a retry or a new pull as the case ends, a cancel as the
 * pull ends. Real service, PostgreSQL, Redis and a sandbox EHR; a race is made certain by holding the
 * row the request waits for in a transaction of the test's own, and changing it there first.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;

/** A redirect off the endpoint's origin is refused for good: the query fails at once, no breaker trips. */
const OFF_ORIGIN = { kind: 'redirect', location: 'https://elsewhere.example/x' } as const;

beforeAll(async () => {
  world = await startCareTeamAWorld({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '1500' }, FAST_CLIENT, { pageSize: 20, maxConcurrency: 8 });
  ({ svc, server, endpointId, cm } = world);
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

afterEach(() => {
  server.faults.clear();
  server.latencyMs = 0;
});

interface PullView {
  state: string;
  attempt: number;
  assembledVersion: number | null;
  totals: { tasks: number; tasksComplete: number };
}

async function openCase(): Promise<string> {
  return (await openFixtureCase(svc, cm, endpointId)).caseId;
}

const startPull = (caseId: string): Promise<string> => startCasePull(svc, cm, caseId);

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

const ended = (p: PullView): boolean => ['complete', 'partial', 'failed'].includes(p.state);

/** A pull that ends `partial`: the Observation query fails for good, the others complete (and are assembled). */
async function partialPull(caseId: string): Promise<string> {
  const broken = server.faults.add({ match: '~_type=Observation', action: OFF_ORIGIN });
  const pullId = await startPull(caseId);
  const partial = await eventually(() => pullOf(caseId, pullId), (p) => ended(p) && p.assembledVersion !== null, 60_000);
  expect(partial.state).toBe('partial');
  server.faults.remove(broken);
  return pullId;
}

const retry = (caseId: string, pullId: string): Promise<Response> => svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });

/** How many of the service's own database sessions wait for a lock while running a statement like `pattern`. */
async function waitingOnLock(pattern: string): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE $1`,
    [pattern],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Holds the row `lockSql` locks in a transaction of the test's own, sends `request` (which waits for
 * that row in a statement like `waitsIn`), then runs `meanwhile` in the held transaction and commits:
 * the request goes on against what `meanwhile` changed.
 */
async function racing(lockSql: string, id: string, waitsIn: string, request: () => Promise<Response>, meanwhile: string): Promise<Response> {
  let answer: Promise<Response> | undefined;
  await svc.service.db.transaction(async (tx) => {
    await tx.query(lockSql, [id]);
    answer = request();
    await eventually(() => waitingOnLock(waitsIn), (n) => n > 0, 10_000);
    await tx.query(meanwhile, [id]);
  });
  if (!answer) throw new Error('no request sent');
  return answer;
}

it('starts one retry attempt when a partial pull is retried several times at once (a double click): the others are 409, none is a 500', async () => {
  const caseId = await openCase();
  const pullId = await partialPull(caseId);

  const answers = await Promise.all([1, 2, 3, 4].map(() => retry(caseId, pullId)));
  expect(answers.map((r) => r.status).sort()).toEqual([202, 409, 409, 409]);
  const accepted = answers.find((r) => r.status === 202);
  expect(await accepted?.json()).toMatchObject({ pullId, state: 'queued', attempt: 2, tasks: 1 });
  for (const refused of answers.filter((r) => r.status === 409)) {
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/Only a partial or failed pull can be retried; this one is (queued|running|complete)/);
  }

  const complete = await eventually(() => pullOf(caseId, pullId), (p) => ended(p) && p.assembledVersion !== null, 60_000);
  expect(complete).toMatchObject({ state: 'complete', attempt: 2 });
  expect(complete.totals.tasksComplete).toBe(complete.totals.tasks);
  // One assembly per attempt that ran: the first (partial) and the one retry.
  const { rows } = await svc.service.db.query<{ trigger: string }>(`SELECT trigger FROM case_bundles WHERE case_id = $1 ORDER BY version`, [caseId]);
  expect(rows.map((r) => r.trigger)).toEqual([`pull:${pullId}:1`, `pull:${pullId}:2`]);
}, 120_000);

it('does not retry a partial pull of a case that has ended: no record is asked for a cancelled case', async () => {
  const caseId = await openCase();
  const pullId = await partialPull(caseId);
  const moved = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew' } });
  expect(moved.status).toBe(200);

  const requests = server.requestCount();
  const res = await retry(caseId, pullId);
  expect(res.status).toBe(409);
  expect(((await res.json()) as { detail: string }).detail).toBe('A case in status cancelled cannot start a record pull.');
  const after = await pullOf(caseId, pullId);
  expect(after).toMatchObject({ state: 'partial', attempt: 1 });
  expect(server.requestCount()).toBe(requests);
}, 120_000);

it('refuses a pull asked for as the case is cancelled, rather than queueing one for the ended case', async () => {
  const caseId = await openCase();
  const res = await racing(
    'SELECT 1 FROM cases WHERE id = $1 FOR NO KEY UPDATE',
    caseId,
    '%FROM cases WHERE id = $1 FOR NO KEY UPDATE%',
    () => svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} }),
    // What the case's move to cancelled changes, under its row lock.
    `UPDATE cases SET status = 'cancelled' WHERE id = $1`,
  );
  expect(res.status).toBe(409);
  expect(((await res.json()) as { detail: string }).detail).toBe('A case in status cancelled cannot start a record pull.');
  const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pulls WHERE case_id = $1`, [caseId]);
  expect(rows[0]?.n).toBe(0);
}, 60_000);

it('answers 409 to a cancel that arrives as the pull ends, not a 200 that reads as cancelled', async () => {
  const caseId = await openCase();
  server.latencyMs = 300;
  const pullId = await startPull(caseId);
  await eventually(() => pullOf(caseId, pullId), (p) => p.state === 'running', 30_000);

  const res = await racing(
    'SELECT 1 FROM pulls WHERE id = $1 FOR UPDATE',
    pullId,
    "%UPDATE pulls SET state = 'cancelled'%",
    () => svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/cancel`, { token: cm, body: { reason: 'Too late' } }),
    // What the flow's parent writes when the pull's last task has ended (finish-pull.ts).
    `UPDATE pulls SET state = 'complete', finished_at = now() WHERE id = $1`,
  );
  expect(res.status).toBe(409);
  expect(await res.json()).toMatchObject({ state: 'complete', detail: 'Only a queued or running pull can be cancelled; this one is complete.' });
  const { rows } = await svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM case_events WHERE case_id = $1 AND type = 'pull_cancelled'`,
    [caseId],
  );
  expect(rows[0]?.n).toBe(0);
  server.latencyMs = 0;
  await eventually(() => pullOf(caseId, pullId), (p) => ended(p), 60_000);
}, 120_000);
