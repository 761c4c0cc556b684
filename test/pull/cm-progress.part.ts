import { openFixtureCase, startCareTeamAWorld, type CareTeamAWorld } from '../support/sandbox-case';
import type { SandboxServer } from '../../src/sandbox';
import { eventually, FAST_CLIENT, type TestService } from '../support/service';

/**
 * What a case manager reads while records are pulled and after: the progress of a pull that ended
 * says which source failed the same way its end and its notification do, and starting a pull says
 * plainly why it cannot start. Real service, PostgreSQL, Redis and a sandbox EHR.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;

beforeAll(async () => {
  world = await startCareTeamAWorld({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '1500' }, FAST_CLIENT, { pageSize: 20, maxConcurrency: 8 });
  ({ svc, server, endpointId, cm } = world);
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

interface PullView {
  state: string;
  failedSources: { sourceId: string; endpointName: string }[];
  totals: { tasks: number; tasksComplete: number; tasksWaiting: number };
  sources: { sourceId: string; state: string; resourceTypes: { query: string; state: string; waitingUntil: string | null }[] }[];
}

const openCase = (): Promise<{ caseId: string; sourceId: string }> => openFixtureCase(svc, cm, endpointId);

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

it("shows a query whose job ended without finishing it as failed once the pull has ended partial, not running for ever", async () => {
  const { caseId, sourceId } = await openCase();
  // The Observation query fails for good, and the database refuses to record that (a failing write at
  // the end of the job's last attempt): its job fails for good with the task still `running`.
  const broken = server.faults.add({ match: '~_type=Observation', action: { kind: 'redirect', location: 'https://elsewhere.example/x' } });
  await svc.service.db.query(`
    CREATE FUNCTION cm_refuse_failed_task() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'cm-progress: the write of a failed task is refused'; END $$;
    CREATE TRIGGER cm_refuse_failed_task BEFORE UPDATE ON pull_tasks FOR EACH ROW WHEN (NEW.state = 'failed') EXECUTE FUNCTION cm_refuse_failed_task();`);
  let pullId = '';
  try {
    const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
    expect(started.status).toBe(202);
    pullId = ((await started.json()) as { pullId: string }).pullId;
    const ended = await eventually(() => pullOf(caseId, pullId), (p) => !['queued', 'running'].includes(p.state), 60_000);
    expect(ended.state).toBe('partial');
    const { rows } = await svc.service.db.query<{ state: string }>(`SELECT state FROM pull_tasks WHERE pull_id = $1 AND query_key LIKE '%Observation'`, [pullId]);
    expect(rows.map((r) => r.state)).toEqual(['running']);

    // The progress agrees with the pull's end: the query failed, so did its source, and it is named.
    const observation = ended.sources[0]?.resourceTypes.find((t) => t.query.endsWith('Observation'));
    expect(observation).toMatchObject({ state: 'failed', waitingUntil: null });
    expect(ended.sources.map((s) => s.state)).toEqual(['failed']);
    expect(ended.failedSources).toEqual([{ sourceId, endpointName: 'care-team-a' }]);
    expect(ended.totals.tasksComplete).toBe(ended.totals.tasks - 1);
    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; data: { failedSourceIds?: string[] } }[] }).items,
      (items) => items.some((n) => n.type === 'pull.partial'),
      30_000,
    );
    expect(notes.find((n) => n.type === 'pull.partial')?.data.failedSourceIds).toEqual([sourceId]);
  } finally {
    await svc.service.db.query('DROP TRIGGER cm_refuse_failed_task ON pull_tasks; DROP FUNCTION cm_refuse_failed_task();');
    server.faults.remove(broken);
  }

  // Retried, the query runs again and the pull completes.
  expect((await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm })).status).toBe(202);
  const complete = await eventually(() => pullOf(caseId, pullId), (p) => !['queued', 'running'].includes(p.state), 60_000);
  expect(complete.state).toBe('complete');
  expect(complete.sources.map((s) => s.state)).toEqual(['complete']);
  expect(complete.failedSources).toEqual([]);
}, 120_000);

it('says a case whose only source was removed has no source, not that its source needs review', async () => {
  const { caseId, sourceId } = await openCase();
  expect((await svc.request('POST', `/api/cases/${caseId}/sources/${sourceId}/remove`, { token: cm, body: { reason: 'Wrong care team' } })).status).toBe(200);
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(409);
  expect(((await res.json()) as { detail: string }).detail).toBe('The case has no sources: add one with POST /api/cases/{id}/sources.');
}, 60_000);
