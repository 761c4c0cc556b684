import { rawStoreIntegrity } from '../../drills/support/raw-store';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { eventually, startTestService, type TestService } from '../support/service';
import { spawnService, type ServiceProcess } from '../support/service-process';
import { openCaseWithSource, registerOpenEndpoint } from '../support/sandbox-case';

/**
 * A stop (SIGTERM) of a worker in the middle of a long query does not wait for the query's end: the
 * pull job stops at its next page boundary, is handed back to the queue (no attempt spent), and the
 * process exits 0 at once; a second worker resumes the query from its committed cursor. Real
 * PostgreSQL, Redis, a sandbox EHR over HTTP (2 records a page, each page of the query 500 ms late
 * while the first worker runs: the rest of the query would hold its stop ~15 s) and the compiled
 * service binary as the worker processes.
 *
 * What is asserted of the EHR: every page URL of the query was asked for exactly once over both
 * workers — the page whose request was out when the stop began is read and committed by the stopping
 * worker, and no request is sent after that — and every record is stored once.
 */
const CONDITIONS = 60;
const PAGE_SIZE = 2;
const PAGES = CONDITIONS / PAGE_SIZE;
const SHUTDOWN_TIMEOUT_MS = 60_000;
/** The stop, far below SHUTDOWN_TIMEOUT_MS: a page or two of latency, one commit, the process's close. */
const STOP_WITHIN_MS = 10_000;

let svc: TestService;
let ehr: SandboxServer;
const workers: ServiceProcess[] = [];
/** The Condition query's pages: the sandbox answers the pull's Condition query with `$everything` (its CapabilityStatement offers it). */
const QUERY = '/Patient/p1/$everything';
const queryRequests = () => ehr.requests().filter((r) => r.method === 'GET' && r.target.startsWith(QUERY));

beforeAll(async () => {
  svc = await startTestService({ ROLE: 'api' });
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none', paging: 'offset', defaultCount: PAGE_SIZE, maxCount: PAGE_SIZE });
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    ...Array.from({ length: CONDITIONS }, (_, i) => ({ resourceType: 'Condition' as const, id: `c${i}`, subject: { reference: 'Patient/p1' }, code: { text: `finding ${i}` } })),
  ]);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await Promise.all([svc.stop(), ehr.stop()]);
});

function startWorker(): ServiceProcess {
  const { config } = svc;
  const worker = spawnService({
    ROLE: 'worker',
    DATABASE_URL: config.databaseUrl ?? '',
    REDIS_URL: config.redisUrl,
    QUEUE_PREFIX: config.queuePrefix,
    DATA_DIR: config.dataDir,
    SECRETS_KEY: config.secretsKey.toString('base64'),
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    PULL_JOB_BACKOFF_MS: '50',
  });
  workers.push(worker);
  return worker;
}

interface TaskSnapshot {
  readonly id: string;
  readonly state: string;
  readonly pages: number;
  readonly retries: number;
  readonly last_error: string | null;
}

async function conditionTask(pullId: string): Promise<TaskSnapshot | undefined> {
  const { rows } = await svc.service.db.query<TaskSnapshot>(
    "SELECT id::text, state, pages, retries, last_error FROM pull_tasks WHERE pull_id = $1 AND resource_type = 'Condition'",
    [pullId],
  );
  return rows[0];
}

it('a stopping worker hands its pull job back at a page boundary; the next worker finishes it, each page asked for once', async () => {
  const cm = await svc.token('case_manager');
  const endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, intakeForChild('Ada', 'Quill', '2016-01-02'), 'p1');
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Condition'] } })).json()) as { pullId: string };

  const slow = ehr.faults.add({ match: `GET ${QUERY}*`, action: { kind: 'latency', ms: 500 } });
  const first = startWorker();
  await first.waitFor('service started');
  const started = await eventually(() => conditionTask(pullId), (t) => (t?.pages ?? 0) >= 1, 15_000);
  expect(started?.pages).toBeLessThan(PAGES - 2);

  const signalled = Date.now();
  first.child.kill('SIGTERM');
  const { code, at } = await first.exited;
  const stopMs = at - signalled;
  expect({ code, stopMs, lines: first.lines.slice(-6) }).toMatchObject({ code: 0 });
  expect(stopMs).toBeLessThan(STOP_WITHIN_MS);
  // Once for the job (the child's Patient query, one quick page, ended long before).
  const handedBack = first.lines.filter((l) => l.message === 'pull job handed back at shutdown' && l.taskId === started?.id);
  expect(handedBack).toEqual([expect.objectContaining({ level: 'info', jobId: expect.stringMatching(/^pull-source:/), pages: expect.any(Number) })]);
  expect(first.lines.some((l) => l.message === 'stopped')).toBe(true);
  expect(first.lines.some((l) => l.message === 'pull job failed' || l.message === 'shutdown timed out')).toBe(false);

  // Left resumable: queued again at its committed cursor, nothing recorded as an error, the pull running.
  const left = await conditionTask(pullId);
  expect(left).toMatchObject({ state: 'queued', pages: handedBack[0]?.pages, last_error: null });
  expect(left?.pages).toBeLessThan(PAGES);
  const { rows: pulls } = await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId]);
  expect(pulls).toEqual([{ state: 'running' }]);
  // No request was sent after the handed-back page: the EHR saw exactly the pages committed.
  expect(queryRequests()).toHaveLength(left?.pages ?? -1);
  ehr.faults.remove(slow);

  const second = startWorker();
  const state = await eventually(
    async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state,
    (s) => s === 'complete' || s === 'partial' || s === 'failed',
    30_000,
  );
  expect(state).toBe('complete');
  expect(await conditionTask(pullId)).toMatchObject({ state: 'complete', pages: PAGES, retries: 0, last_error: null });

  // Each page URL of the query asked for once, over both workers, and each answered.
  const conditionRequests = queryRequests();
  expect(conditionRequests).toHaveLength(PAGES);
  expect(new Set(conditionRequests.map((r) => r.target)).size).toBe(PAGES);
  expect(conditionRequests.every((r) => r.status === 200)).toBe(true);
  // Every record stored once: one raw row per Condition, one stored page per page, counters equal rows.
  const { rows: stored } = await svc.service.db.query<{ n: number; distinct: number }>(
    "SELECT count(*)::int AS n, count(DISTINCT remote_id)::int AS distinct FROM raw_resources WHERE case_id = $1 AND resource_type = 'Condition'",
    [caseId],
  );
  expect(stored).toEqual([{ n: CONDITIONS, distinct: CONDITIONS }]);
  const integrity = await rawStoreIntegrity(svc.service.db, caseId);
  expect(integrity).toMatchObject({ duplicatePages: 0, counterMismatches: 0, resourceMismatches: 0, unparsablePages: 0, pageHashMismatches: 0 });
  expect(second.lines.some((l) => l.message === 'pull job failed')).toBe(false);
}, 90_000);
