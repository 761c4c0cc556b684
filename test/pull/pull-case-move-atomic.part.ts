import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { refuseWrites } from '../support/pg-fault';
import { ADA_PATIENT_ID, adaIntake, adaWithPdfDocuments, OFF_ORIGIN } from '../support/documents-ehr';
import { openCaseWithSource, registerOpenEndpoint } from '../support/sandbox-case';

/**
 * Starting a pull on a case that is `submitted` (or `records_complete`), and retrying one on a case
 * that is `records_complete`, moves the case to `collecting_records`; the pull's rows and that move
 * are one transaction. Had the move been a transaction of its own after the pull's, a crash (or a
 * failed statement) between the two left a pull under way on a case that never moved: the pull's
 * end moves only a case in `collecting_records` to `records_complete`, so a `submitted` case stayed
 * `submitted` with its records in (and a request sent again found the pull "already under way"),
 * and a retried case kept its old `records_complete` and SLA clock while its records were pulled
 * again (a retry sent again found the pull `queued`: 409).
 *
 * Real service, PostgreSQL, Redis and a sandbox EHR; the fault is real: a trigger in the test's own
 * database refuses the case's move to `collecting_records`, and a sequence counts the refusals
 * (`nextval` is not rolled back with them).
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

interface PullView {
  state: string;
  attempt: number;
  assembledVersion: number | null;
  totals: { attachmentsFailed: number };
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '5000' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load(adaWithPdfDocuments(2, 'a discharge summary'));
  endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
});

/** A submitted case whose one source is the EHR's patient p1. */
async function submittedCase(): Promise<string> {
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, adaIntake(), ADA_PATIENT_ID);
  return caseId;
}

const startPull = (caseId: string): Promise<Response> => svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['DocumentReference'] } });

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

/** The pull has ended and its latest attempt's bundle is assembled. */
const assembled = (p: PullView): boolean => ['complete', 'partial', 'failed'].includes(p.state) && p.assembledVersion !== null;

const caseStatus = async (caseId: string): Promise<string> =>
  ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status;

/** The case's pulls as stored: state and attempt. */
const pullRows = async (caseId: string) =>
  (await svc.service.db.query<{ state: string; attempt: number }>('SELECT state, attempt FROM pulls WHERE case_id = $1 ORDER BY created_at', [caseId])).rows;

/** The case's moves into collecting_records on its timeline, as (from, to). */
const movesToCollecting = async (caseId: string) =>
  (
    await svc.service.db.query<{ from_status: string; to_status: string }>(
      "SELECT from_status, to_status FROM case_events WHERE case_id = $1 AND type = 'transition' AND to_status = 'collecting_records' ORDER BY id",
      [caseId],
    )
  ).rows.map((r) => [r.from_status, r.to_status]);

/**
 * Runs `body` while PostgreSQL refuses to write the case's move to collecting_records on its
 * timeline; `refusals` reads how many times it refused.
 */
async function whileMoveRefused(caseId: string, body: (refusals: () => Promise<number>) => Promise<void>): Promise<void> {
  const fault = await refuseWrites(svc.service.db, {
    name: 'move',
    table: 'case_events',
    operation: 'INSERT',
    when: `NEW.case_id = '${caseId}' AND NEW.type = 'transition' AND NEW.to_status = 'collecting_records'`,
  });
  try {
    await body(() => fault.refusals());
  } finally {
    await fault.remove();
  }
}

it('starts no pull when the submitted case cannot be moved to collecting_records, and once it can, the pull moves it on to records_complete', async () => {
  const caseId = await submittedCase();
  await whileMoveRefused(caseId, async (refusals) => {
    const refused = await startPull(caseId);
    expect(refused.status).toBe(500);
    expect(await refusals()).toBe(1);
    // Neither the pull nor the move: not a pull under way on a case left submitted.
    expect(await pullRows(caseId)).toEqual([]);
    expect(await caseStatus(caseId)).toBe('submitted');
  });

  // The fault gone, the same request starts the pull and moves the case, once.
  const started = await startPull(caseId);
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  expect(await movesToCollecting(caseId)).toEqual([['submitted', 'collecting_records']]);
  expect(await eventually(() => pullOf(caseId, pullId), assembled, 60_000)).toMatchObject({ state: 'complete', attempt: 1 });
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete', 30_000);
  expect(await pullRows(caseId)).toEqual([{ state: 'complete', attempt: 1 }]);
}, 120_000);

it('retries nothing when the records_complete case cannot be moved back to collecting_records, and once it can, the retry moves it and back', async () => {
  const caseId = await submittedCase();
  // One document behind a URL that fails for good: the pull ends complete with it failed, the case records_complete.
  ehr.faults.add({ match: 'GET /Binary/b2', action: OFF_ORIGIN });
  const started = await startPull(caseId);
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const first = await eventually(() => pullOf(caseId, pullId), assembled, 60_000);
  expect(first).toMatchObject({ state: 'complete', attempt: 1, totals: { attachmentsFailed: 1 } });
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete', 30_000);
  ehr.faults.clear();

  await whileMoveRefused(caseId, async (refusals) => {
    const refused = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
    expect(refused.status).toBe(500);
    expect(await refusals()).toBe(1);
    // Neither the retry (its attempt, its documents set pending again) nor the move.
    expect(await pullRows(caseId)).toEqual([{ state: 'complete', attempt: 1 }]);
    expect((await pullOf(caseId, pullId)).totals.attachmentsFailed).toBe(1);
    expect(await caseStatus(caseId)).toBe('records_complete');
  });

  // The fault gone, the retry (not refused as `queued`) moves the case, and its end moves it back.
  const retried = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
  expect(retried.status).toBe(202);
  expect(await retried.json()).toMatchObject({ pullId, attempt: 2 });
  expect(await movesToCollecting(caseId)).toEqual([
    ['submitted', 'collecting_records'],
    ['records_complete', 'collecting_records'],
  ]);
  const done = await eventually(() => pullOf(caseId, pullId), (p) => assembled(p) && p.attempt === 2, 60_000);
  expect(done).toMatchObject({ state: 'complete', attempt: 2, totals: { attachmentsFailed: 0 } });
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete', 30_000);
}, 120_000);
