import { randomUUID } from 'node:crypto';
import type { CaseServiceDeps } from '../../src/cases/case-service';
import { loadDomainData } from '../../src/cases/domain-data';
import { scanSearchPage } from '../../src/fhir';
import { finishPull } from '../../src/pull/finish-pull';
import { pageEntries } from '../../src/pull/page-resources';
import { ATTACHMENT_JOB_ENDED_REASON, commitPage, insertPull, markTaskFinished } from '../../src/pull/pull-repository';
import { attachmentsOf } from '../../src/pull/pull-task-runner';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { refuseWrites } from '../support/pg-fault';
import { insertPullTask, insertTestCase } from '../support/pull-task';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A document whose fetch job fails for good without managing to record it (the database refused its
 * writes through every attempt) does not stay `pending` for ever: when the pull attempt ends, every
 * job of it is done, so the pull's end fails the document with the reason, the pull's counts show it
 * failed, and the case manager's retry fetches it again (before, the retry answered 409 "nothing to
 * retry"). The same holds when the reconciler decides a pull whose parent failed for good. A pull
 * whose queries all completed stays `complete` with a failed document, as when the download itself
 * failed (retry-complete-failed-documents.part.ts). Real service, PostgreSQL, Redis and a sandbox EHR.
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

const PDF = Buffer.from('%PDF-1.4\n% a referral letter\n%%EOF\n').toString('base64');

interface PullView {
  state: string;
  attempt: number;
  assembledVersion: number | null;
  totals: { attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; attachmentsPending: number };
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', ATTACHMENT_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '5000' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none' });
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    { resourceType: 'Binary', id: 'b1', contentType: 'application/pdf', data: PDF },
    {
      resourceType: 'DocumentReference', id: 'doc1', status: 'current', subject: { reference: 'Patient/p1' },
      content: [{ attachment: { contentType: 'application/pdf', url: 'Binary/b1' } }],
    },
  ]);
  endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

const assembled = (p: PullView): boolean => ['complete', 'partial', 'failed'].includes(p.state) && p.assembledVersion !== null;

async function attachmentRows(pullId: string): Promise<{ state: string; error: string | null }[]> {
  const { rows } = await svc.service.db.query<{ state: string; error: string | null }>(
    'SELECT a.state, a.error FROM attachments a JOIN pull_tasks t ON t.id = a.task_id WHERE t.pull_id = $1',
    [pullId],
  );
  return rows;
}

it('fails a document whose fetch job ended without recording anything, and the retry fetches it again', async () => {
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Ada', 'Quill', '2016-01-02') })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: 'p1' } } })).status).toBe(201);
  // Every outcome a fetch job records (fetched or failed: both count an attempt) is refused for this case.
  const fault = await refuseWrites(svc.service.db, {
    name: `lost_result_${caseId.slice(0, 8)}`, table: 'attachments', operation: 'UPDATE', when: `NEW.case_id = '${caseId}' AND NEW.attempts > OLD.attempts`,
  });
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['DocumentReference'] } });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };

  // The job's four attempts (50 + 100 + 200 ms of backoff) all fail to record; then the parent ends the pull.
  const first = await eventually(() => pullOf(caseId, pullId), assembled, 90_000);
  expect(await fault.refusals()).toBeGreaterThanOrEqual(4);
  expect(first).toMatchObject({ state: 'complete', attempt: 1 });
  // The document behind its URL, and the Binary's inline data (a batch job that could not record either).
  const found = first.totals.attachmentsFound;
  expect(found).toBeGreaterThanOrEqual(1);
  expect(first.totals).toMatchObject({ attachmentsFetched: 0, attachmentsFailed: found, attachmentsPending: 0 });
  expect(await attachmentRows(pullId)).toEqual(Array.from({ length: found }, () => ({ state: 'failed', error: ATTACHMENT_JOB_ENDED_REASON })));

  await fault.remove();
  const retried = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
  expect(retried.status).toBe(202);
  expect(await retried.json()).toMatchObject({ pullId, attempt: 2, tasks: 0, attachments: found });
  const done = await eventually(() => pullOf(caseId, pullId), (p) => p.attempt === 2 && assembled(p), 60_000);
  expect(done).toMatchObject({ state: 'complete', attempt: 2 });
  expect(done.totals).toMatchObject({ attachmentsFound: found, attachmentsFetched: found, attachmentsFailed: 0, attachmentsPending: 0 });
  expect(await attachmentRows(pullId)).toEqual(Array.from({ length: found }, () => ({ state: 'fetched', error: null })));
}, 150_000);

it('fails the pending documents when the reconciler decides a pull whose parent failed for good', async () => {
  // What queues/pull-reconcile.ts does then: finishPull without moving the case, with its alert.
  const deps: CaseServiceDeps = { db: svc.service.db, config: { programTimeZone: 'America/New_York' }, domain: loadDomainData() };
  const caseId = randomUUID();
  await insertTestCase(deps.db, caseId);
  const pullId = randomUUID();
  await insertPull(deps.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const base = 'https://ehr.example.org/fhir';
  const documents = await insertPullTask(svc.service.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: base, resourceType: 'DocumentReference', path: 'DocumentReference' });
  // Another query whose job failed for good without marking its task (it stays queued).
  await insertPullTask(svc.service.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}-b`, baseUrl: base, resourceType: 'Condition', path: 'Condition' });
  const entry = [{ resource: { resourceType: 'DocumentReference', id: 'd1', status: 'current', content: [{ attachment: { contentType: 'application/pdf', url: 'Binary/x1' } }] } }];
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, base));
  await commitPage(deps.db, { task: documents, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: attachmentsOf(entries.entries) });
  await markTaskFinished(deps.db, documents.id, 'complete', null);

  expect(await finishPull(deps, pullId, { moveCase: false, event: { type: 'assembly.failed', data: { caseId, pullId } } })).toBe('partial');
  expect(await attachmentRows(pullId)).toEqual([{ state: 'failed', error: ATTACHMENT_JOB_ENDED_REASON }]);
  const { rows } = await deps.db.query<{ type: string }>("SELECT type FROM outbox WHERE case_id = $1 AND type IN ('pull.partial', 'assembly.failed') ORDER BY type", [caseId]);
  expect(rows.map((r) => r.type)).toEqual(['assembly.failed', 'pull.partial']);
  // Decided once: finishing it again changes nothing.
  expect(await finishPull(deps, pullId, { moveCase: false })).toBe('partial');
  expect(await attachmentRows(pullId)).toEqual([{ state: 'failed', error: ATTACHMENT_JOB_ENDED_REASON }]);
});
