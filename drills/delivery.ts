/**
 * Drill: delivering a signed report into a failing recipient. Round 1: the referring EHR answers
 * 500 to the first three writes. Round 2: the first write is processed but its answer is cut off,
 * the resend hangs, and the worker process is SIGKILLed before it records anything; a new worker
 * takes over. Each round must end `delivered` with exactly one DiagnosticReport and one
 * Communication in the EHR, found by our identifier.
 */
import type { Intake } from '../src/cases/intake-schema';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../src/delivery/report-resources';
import { fixtureBundle, referredIntake } from '../src/fixtures/fixture-child-intake';
import { startSandboxServer, type SandboxServer } from '../src/sandbox';
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { startDrillService, type DrillService } from './support/drill-service';
import { eventually } from './support/poll';
import { killHard, spawnWorker, type WorkerProcess } from './support/worker-process';

export interface DeliveryDrillOptions {
  readonly print?: DrillPrinter;
}

const WORKER_ENV = { JOB_LOCK_MS: '1500', DELIVERY_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '120000', NOTIFY_POLL_MS: '500' };

function opinionFor(intake: Intake) {
  return {
    summary: 'Drill opinion.',
    diagnosisAssessment: 'Confirmed by the records.',
    recommendations: 'Continue the current plan.',
    answers: intake.questions.map((question) => ({ question, answer: `Drill answer to: ${question}` })),
    followUp: 'Review in 3 months.',
  };
}

/** How many resources of `type` carry `system|value` in the EHR (asked over HTTP, as any client would). */
async function countInEhr(ehr: SandboxServer, type: string, system: string, value: string): Promise<number> {
  const url = new URL(`${ehr.baseUrl}/${type}`);
  url.searchParams.set('identifier', `${system}|${value}`);
  const bundle = (await (await fetch(url, { headers: { accept: 'application/fhir+json' } })).json()) as { entry?: { search?: { mode?: string } }[] };
  return (bundle.entry ?? []).filter((e) => (e.search?.mode ?? 'match') === 'match').length;
}

/** An assigned case with a recipient and a drafted opinion, ready to sign. */
async function caseReadyToSign(svc: DrillService, endpointId: string, tokens: { cm: string; specialist: string }): Promise<string> {
  const intake = referredIntake();
  const opened = (await (await svc.request('POST', '/api/cases', { token: tokens.cm, body: intake })).json()) as { id: string };
  // Assignment (payment, records) is not what this drill exercises: the case is put in `assigned`.
  await svc.service.db.query(`UPDATE cases SET status = 'assigned', revision = revision + 1 WHERE id = $1`, [opened.id]);
  const recipient = await svc.request('POST', `/api/cases/${opened.id}/recipients`, { token: tokens.cm, body: { endpointId } });
  if (recipient.status !== 201) throw new Error(`recipient refused: ${recipient.status} ${await recipient.text()}`);
  const put = await svc.request('PUT', `/api/cases/${opened.id}/opinion`, { token: tokens.specialist, body: opinionFor(intake) });
  if (put.status !== 200) throw new Error(`opinion refused: ${put.status} ${await put.text()}`);
  return opened.id;
}

async function deliveryRow(svc: DrillService, caseId: string): Promise<{ state: string; attempts: number } | undefined> {
  return (await svc.service.db.query<{ state: string; attempts: number }>('SELECT state, attempts FROM deliveries WHERE case_id = $1', [caseId])).rows[0];
}

async function checkExactlyOnce(log: DrillLog, svc: DrillService, ehr: SandboxServer, caseId: string, round: string): Promise<void> {
  const row = await eventually(`${round}: delivery finished`, () => deliveryRow(svc, caseId), (d) => d?.state === 'delivered' || d?.state === 'failed', 120_000);
  log.equal(`${round}: delivery state`, row?.state, 'delivered');
  log.equal(`${round}: DiagnosticReports with our identifier`, await countInEhr(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`), 1);
  log.equal(`${round}: Communications with our identifier`, await countInEhr(ehr, 'Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`), 1);
  log.step(`${round}: delivered in ${row?.attempts ?? 0} attempts`);
}

/** Runs both rounds against one referring EHR. */
export async function deliveryDrill(options: DeliveryDrillOptions = {}): Promise<DrillResult> {
  const log = new DrillLog('delivery', options.print);
  return runDrill(log, async () => {
    let svc: DrillService | undefined;
    let ehr: SandboxServer | undefined;
    const workers: WorkerProcess[] = [];
    try {
      // The API here; deliveries only in worker processes, so one can be killed.
      [svc, ehr] = await Promise.all([startDrillService({ env: { ROLE: 'api' } }), startSandboxServer({ name: 'referring-ehr', auth: 'none', paging: 'offset' })]);
      await ehr.load(fixtureBundle('referring-ehr'));
      const admin = await svc.token('admin');
      const tokens = { cm: await svc.token('case_manager'), specialist: await svc.token('specialist') };
      const endpoint = (await (
        await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Referring EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } })
      ).json()) as { id: string };
      const worker = spawnWorker(svc.config, WORKER_ENV);
      workers.push(worker);

      // Round 1: three 500s.
      const first = await caseReadyToSign(svc, endpoint.id, tokens);
      const errors = ehr.faults.add({ match: 'POST *', action: { kind: 'server-error' }, from: 1, to: 3 });
      await svc.request('POST', `/api/cases/${first}/opinion/sign`, { token: tokens.specialist });
      await checkExactlyOnce(log, svc, ehr, first, '500 ×3');
      log.equal('500 ×3: server errors served', ehr.faults.rule(errors)?.fired, 3);
      ehr.faults.clear();

      // Round 2: processed, answer lost, resend hangs, worker killed.
      const second = await caseReadyToSign(svc, endpoint.id, tokens);
      const processed = ehr.faults.add({ match: 'POST *', action: { kind: 'truncated', fraction: 0 }, nth: 1 });
      const hung = ehr.faults.add({ match: 'POST *', action: { kind: 'hang' }, from: 2 });
      await svc.request('POST', `/api/cases/${second}/opinion/sign`, { token: tokens.specialist });
      await eventually('the resend to hang', async () => ehr?.faults.rule(hung)?.fired ?? 0, (n) => n >= 1, 60_000);
      await killHard(worker);
      log.step('worker SIGKILLed after the write was processed and before its result was recorded');
      log.equal('kill: writes processed before the kill', ehr.faults.rule(processed)?.fired, 1);
      log.equal('kill: report already in the EHR', await countInEhr(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${second}-v1`), 1);
      ehr.faults.clear();
      workers.push(spawnWorker(svc.config, WORKER_ENV));
      await checkExactlyOnce(log, svc, ehr, second, 'kill');
      log.summarize('500 ×3, then a kill between the write and its record: 1 DiagnosticReport + 1 Communication each');
    } finally {
      await Promise.all(workers.map((w) => killHard(w)));
      await svc?.stop();
      await ehr?.stop();
    }
  });
}
