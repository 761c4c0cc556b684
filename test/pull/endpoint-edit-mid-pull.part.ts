import { startCareTeamAWorld, type CareTeamAWorld } from '../support/sandbox-case';
import type { SandboxServer } from '../../src/sandbox';
import { fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, FAST_CLIENT, type TestService } from '../support/service';

/**
 * An admin edits an endpoint (its limits here) while a record pull from it runs. The edit replaces
 * the endpoint's client in the worker (the next job that asks for it gets a new one, and the old one
 * is closed): the queries already running go on with the new client from their committed cursor.
 * Before, their next request failed on the closed client, was retried, counted against the
 * endpoint's circuit breaker and failed the query's job attempt. Real service, Redis, PostgreSQL and
 * a sandbox EHR slowed down so that the pull is running when the endpoint is edited.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;
let admin: string;

beforeAll(async () => {
  // Two queries at a time: the next ones start after the edit, and ask for the endpoint's client again.
  world = await startCareTeamAWorld({ PULL_CONCURRENCY: '2' }, FAST_CLIENT, { pageSize: 5, maxConcurrency: 4 });
  ({ svc, server, endpointId, cm } = world);
  admin = await svc.token('admin');
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

interface PullView {
  state: string;
  totals: { pages: number; tasks: number; tasksComplete: number };
}

it('goes on with the new client when the endpoint is edited mid-pull: the pull completes, the circuit stays closed, no request is retried', async () => {
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  server.latencyMs = 150;
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const pullOf = async (): Promise<PullView> => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;
  const running = await eventually(pullOf, (p) => p.state === 'running' && p.totals.pages >= 2, 30_000);
  expect(running.totals.tasksComplete).toBeLessThan(running.totals.tasks);

  // Mid-pull: a new limit. The tasks that start next get the new client; the old one is closed under the running ones.
  const edited = await svc.request('PATCH', `/api/endpoints/${endpointId}`, { token: admin, body: { maxRequestsPerSecond: 999 } });
  expect(edited.status).toBe(200);

  const done = await eventually(pullOf, (p) => ['complete', 'partial', 'failed'].includes(p.state), 90_000);
  expect(done.state).toBe('complete');
  const circuit = (await (await svc.request('GET', `/api/endpoints/${endpointId}/circuit`, { token: admin })).json()) as { state: string; failures: number };
  expect(circuit).toMatchObject({ state: 'closed', failures: 0 });
  const { rows } = await svc.service.db.query<{ retries: number; errors: number }>(
    'SELECT sum(retries)::int AS retries, count(*) FILTER (WHERE last_error IS NOT NULL)::int AS errors FROM pull_tasks WHERE pull_id = $1',
    [pullId],
  );
  expect(rows[0]).toEqual({ retries: 0, errors: 0 });
}, 120_000);
