import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { eventually, startTestService, type TestService } from '../support/service';
import { killHard, spawnWorker, type WorkerProcess } from '../support/worker-process';
import { openCaseWithSource, registerOpenEndpoint } from '../support/sandbox-case';

/**
 * A task whose last page is committed (pages > 0, no cursor) but which was never marked complete —
 * its worker died, or PostgreSQL restarted, in between — is finished by the next run, without
 * asking the server for its query again from page one (which would count every resource twice).
 */
let svc: TestService;
let ehr: SandboxServer;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  svc = await startTestService({ ROLE: 'api' });
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, code: { text: 'asthma' } },
  ]);
});
afterAll(async () => {
  if (worker) await killHard(worker);
  await Promise.all([svc.stop(), ehr.stop()]);
});

it('finishes a paged-out task instead of paging it again', async () => {
  const cm = await svc.token('case_manager');
  const endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, intakeForChild('Ada', 'Quill', '2016-01-02'), 'p1');
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Condition'] } })).json()) as { pullId: string };
  // No worker runs yet: make the task look like one whose last page was committed by a run that died.
  const marked = await svc.service.db.query(`UPDATE pull_tasks SET state = 'running', pages = 1, next_url = NULL WHERE pull_id = $1`, [pullId]);
  // The Condition query and the child's Patient, read by every pull (source-patient-query.ts).
  expect(marked.rowCount).toBe(2);
  const requestsBefore = ehr.requestCount();

  worker = spawnWorker(svc.config, { PULL_JOB_BACKOFF_MS: '50' });
  const state = await eventually(
    async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state,
    (s) => s === 'complete' || s === 'partial' || s === 'failed',
    60_000,
  );
  expect(state).toBe('complete');
  const { rows } = await svc.service.db.query<{ state: string; pages: number }>('SELECT state, pages FROM pull_tasks WHERE pull_id = $1', [pullId]);
  expect(rows).toEqual([{ state: 'complete', pages: 1 }, { state: 'complete', pages: 1 }]);
  expect(ehr.requestCount()).toBe(requestsBefore);
}, 90_000);
