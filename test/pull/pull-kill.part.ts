import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';
import { killHard, spawnWorker, type WorkerProcess } from '../support/worker-process';

/**
 * A worker process killed with SIGKILL in the middle of a pull, then restarted, finishes with
 * exactly the resources of an uninterrupted run: nothing lost, nothing stored twice, and every
 * task's page and resource counters agree with what the raw store holds.
 */
let svc: TestService;
let server: SandboxServer;
const workers: WorkerProcess[] = [];
// A 5 s job lock (renewed every 2.5 s): a renewal late on a loaded host must not let the live worker's
// job be taken as stalled and run again; a killed worker's job is taken over once it lapses.
const WORKER_ENV = { JOB_LOCK_MS: '5000', PULL_JOB_BACKOFF_MS: '50', PULL_CONCURRENCY: '4', CONCURRENCY_LEASE_MS: '1500' };

beforeAll(async () => {
  // The API runs here; all pulling happens in the child worker processes.
  svc = await startTestService({ ROLE: 'api' });
  server = await startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', defaultCount: 8, maxCount: 8, latencyMs: 15 });
  await server.load(fixtureBundle('care-team-a'));
});
afterAll(async () => {
  await Promise.all(workers.map(killHard));
  await Promise.all([svc.stop(), server.stop()]);
});

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

it('resumes after SIGKILL mid-pull with exactly the uninterrupted resource set', async () => {
  const admin = await svc.token('admin');
  const cm = await svc.token('case_manager');
  const endpoint = (await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
  ).json()) as { id: string };
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
  await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpoint.id, patient: { id: fixturePatientId('care-team-a') } } });
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };

  // The fourth page asked for (the sandbox answers the pull with `$everything` streams) is held: the
  // pull cannot end before the kill, however late this process gets to it on a loaded host.
  const heldPage = server.faults.add({ match: 'GET /Patient/*/$everything*', action: { kind: 'hold' }, nth: 4 });
  const first = spawnWorker(svc.config, WORKER_ENV);
  workers.push(first);
  // Let it commit some pages and ask for the held one, then kill it without warning.
  await eventually(async () => server.faults.rule(heldPage)?.fired ?? 0, (n) => n >= 1, 60_000);
  await eventually(() => count('SELECT count(*)::int AS n FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id WHERE t.pull_id = $1', [pullId]), (n) => n >= 3, 60_000);
  await killHard(first);
  server.faults.release(heldPage);
  const pagesAtKill = await count('SELECT count(*)::int AS n FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id WHERE t.pull_id = $1', [pullId]);
  const { rows: stateAtKill } = await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId]);
  expect(stateAtKill[0]?.state).not.toBe('complete');

  const second = spawnWorker(svc.config, WORKER_ENV);
  workers.push(second);
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string; totals: { pages: number; resources: number } },
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    90_000,
  );
  expect(pull.state).toBe('complete');
  expect(pull.totals.pages).toBeGreaterThan(pagesAtKill);

  // Exactly the resources the server holds, once each.
  const { rows } = await svc.service.db.query<{ k: string }>(
    `SELECT resource_type || '/' || remote_id AS k FROM raw_resources WHERE case_id = $1 ORDER BY 1`,
    [caseId],
  );
  const stored = rows.map((r) => r.k);
  const pulledTypes = new Set(['Patient', 'Observation', 'DiagnosticReport', 'DocumentReference', 'Binary', 'ImagingStudy', 'Endpoint', 'Condition', 'MedicationRequest', 'Medication', 'AllergyIntolerance', 'Procedure', 'Encounter', 'Immunization']);
  const held = (fixtureBundle('care-team-a').entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is NonNullable<typeof r> => r !== undefined && pulledTypes.has(r.resourceType))
    .map((r) => `${r.resourceType}/${r.id}`)
    .sort();
  expect(stored).toEqual(held);
  // Counters agree with the store: no page was counted or stored twice.
  const { rows: tasks } = await svc.service.db.query<{ id: string; pages: number; resources: number }>('SELECT id, pages, resources FROM pull_tasks WHERE pull_id = $1', [pullId]);
  for (const task of tasks) {
    expect(await count('SELECT count(*)::int AS n FROM raw_pages WHERE task_id = $1', [task.id])).toBe(task.pages);
    expect(await count('SELECT count(*)::int AS n FROM raw_resources WHERE task_id = $1', [task.id])).toBe(task.resources);
  }
}, 150_000);
