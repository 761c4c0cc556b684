import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { searchSandbox } from '../support/opinion-case';
import { caseReadyToSign, startServiceAndReferringEhr } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';
import { killHard, spawnWorker, type WorkerProcess } from '../support/worker-process';

/**
 * A worker killed right after its write reached the recipient, before it recorded the result:
 * the recipient processes the POST (transaction) but the answer is cut off, the client's resend
 * hangs, and the worker process is SIGKILLed. The next worker is killed too, while it looks the
 * report up (its job has now stalled twice: BullMQ's default would fail it unrun, leaving the
 * delivery `sending`). A third worker picks the job up, finds the report by identifier and records
 * it: exactly one DiagnosticReport and one Communication in the EHR.
 */
let svc: TestService;
let ehr: SandboxServer;
const workers: WorkerProcess[] = [];
// A 5 s job lock (renewed every 2.5 s): a renewal late on a loaded host must not let the live worker's
// job be taken as stalled and run again; a killed worker's job is taken over once it lapses.
const WORKER_ENV = { JOB_LOCK_MS: '5000', DELIVERY_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '120000', NOTIFY_POLL_MS: '500' };

beforeAll(async () => {
  // The API runs here; deliveries run only in the child worker processes.
  ({ svc, ehr } = await startServiceAndReferringEhr({ env: { ROLE: 'api' }, overrides: {} }));
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map(killHard));
  await Promise.all([svc.stop(), ehr.stop()]);
});

it('ends with exactly one report after a SIGKILL between the write and recording it', async () => {
  const { caseId, specialist } = await caseReadyToSign(svc, ehr, 'spec-kill');

  // The first write is processed, its answer cut off; the resend never gets an answer.
  const processed = ehr.faults.add({ match: 'POST *', action: { kind: 'truncated', fraction: 0 }, nth: 1 });
  const hung = ehr.faults.add({ match: 'POST *', action: { kind: 'hang' }, from: 2 });
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);

  const first = spawnWorker(svc.config, WORKER_ENV);
  workers.push(first);
  await eventually(async () => ehr.faults.rule(hung)?.fired ?? 0, (n) => n >= 1, 60_000);
  await killHard(first);
  expect(ehr.faults.rule(processed)?.fired).toBe(1);
  // The report is in the EHR, but the service never recorded it.
  expect(await searchSandbox(ehr, '', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` })).toHaveLength(1);
  const { rows } = await svc.service.db.query<{ state: string; attempts: number }>('SELECT state, attempts FROM deliveries WHERE case_id = $1', [caseId]);
  expect(rows[0]?.state).not.toBe('delivered');
  expect(rows[0]?.attempts).toBe(1);
  ehr.faults.clear();

  // The job stalls a second time: the next worker hangs looking the report up, and is killed too.
  const lookup = ehr.faults.add({ match: 'GET *', action: { kind: 'hang' } });
  const second = spawnWorker(svc.config, WORKER_ENV);
  workers.push(second);
  await eventually(async () => ehr.faults.rule(lookup)?.fired ?? 0, (n) => n >= 1, 60_000);
  await killHard(second);
  ehr.faults.clear();

  const third = spawnWorker(svc.config, WORKER_ENV);
  workers.push(third);
  const delivered = await eventually(
    async () => (await svc.service.db.query<{ state: string; attempts: number }>('SELECT state, attempts FROM deliveries WHERE case_id = $1', [caseId])).rows[0],
    (d) => d?.state === 'delivered' || d?.state === 'failed',
    90_000,
  );
  expect(delivered).toMatchObject({ state: 'delivered', attempts: 3 });
  expect(await searchSandbox(ehr, '', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` })).toHaveLength(1);
  expect(await searchSandbox(ehr, '', 'Communication', { identifier: `${REPORT_COMMUNICATION_SYSTEM}|${caseId}-v1` })).toHaveLength(1);
  expect(ehr.writtenResources('DiagnosticReport')).toHaveLength(1);
  const { rows: status } = await svc.service.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [caseId]);
  expect(status[0]?.status).toBe('delivered');
}, 180_000);
