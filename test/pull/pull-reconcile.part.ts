import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import IORedis from 'ioredis';
import type { CaseServiceDeps } from '../../src/cases/case-service';
import { loadDomainData } from '../../src/cases/domain-data';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, findPull, insertPull, markTaskFinished, type TaskRow } from '../../src/pull/pull-repository';
import { attachmentsOf, runPullTask } from '../../src/pull/pull-task-runner';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { QUEUES } from '../../queues/names';
import { assembleJobId, pullJobId, PullFlowProducer } from '../../queues/pull-flow';
import { reconcilePulls } from '../../queues/pull-reconcile';
import { assembleCase } from '../../src/assembly/assemble';
import { bundleVersionFor } from '../../src/assembly/bundle-repository';
import { finishPull } from '../../src/pull/finish-pull';
import { pullAssemblyTrigger } from '../../src/pull/pull-progress';
import { pullsAwaitingAssembly } from '../../src/pull/pulls-awaiting-assembly';
import { startAssembleCaseWorker } from '../../queues/assemble-case';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask, pullWorkerDepsForTest } from '../support/pull-task';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * Redis only carries work; PostgreSQL says what is left. When Redis lost a pull's flow after some of
 * its tasks completed, the reconciler adds the flow again with the unfinished tasks AND the attachments
 * those complete tasks still have pending (whose jobs went with the flow); a healthy flow is left as it
 * is (no second batch job), a pull waiting for its attachments is not declared finished early, and a
 * parent that failed for good runs once more. A complete task's job that runs again re-adds its
 * pending attachments. Real Redis and PostgreSQL, no workers (their jobs are inspected in Redis).
 */
const BASE = 'https://ehr.example.org/fhir';
let t: TestDatabase;
let prefix: string;
let producer: PullFlowProducer;
const queues: Queue[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  producer = new PullFlowProducer(bullConnectionOptions(TEST_REDIS_URL), prefix);
}, 60_000);

afterAll(async () => {
  await producer.close();
  for (const q of queues) await q.close();
  await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  await t.drop();
});

const caseDeps = (): CaseServiceDeps => ({ db: t.db, config: { programTimeZone: 'America/New_York' }, domain: loadDomainData() });

function queue(name: string): Queue {
  const q = new Queue(name, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  queues.push(q);
  return q;
}

/** A case with a pull of two tasks: documents (one page with 3 inline attachments, committed) and conditions (queued). */
async function pullWithPendingDocuments(): Promise<{ pull: { id: string; caseId: string; attempt: number }; documents: TaskRow; conditions: TaskRow; attachmentIds: string[] }> {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const name = `ehr-${pullId.slice(0, 8)}`;
  const documents = await insertPullTask(t.db, { caseId, pullId, name, baseUrl: BASE, resourceType: 'DocumentReference', path: 'DocumentReference' });
  const conditions = await insertPullTask(t.db, { caseId, pullId, name: `${name}-b`, baseUrl: BASE, resourceType: 'Condition', path: 'Condition' });
  const entry = ['d1', 'd2', 'd3'].map((id) => ({
    resource: { resourceType: 'DocumentReference', id, status: 'current', content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(id).toString('base64') } }] },
  }));
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, BASE));
  const attachments = attachmentsOf(entries.entries);
  await commitPage(t.db, { task: documents, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments });
  await markTaskFinished(t.db, documents.id, 'complete', null);
  const found = await findPull(t.db, pullId);
  return { pull: { id: pullId, caseId, attempt: found?.attempt ?? 1 }, documents, conditions, attachmentIds: attachments.map((a) => a.id).sort() };
}

/** The attachment ids of every inline batch job queued (one array per job). */
async function inlineBatches(q: Queue): Promise<string[][]> {
  const jobs = await q.getJobs(['waiting', 'waiting-children', 'delayed', 'prioritized']);
  return jobs.map((j) => ((j.data as { attachmentIds?: string[] }).attachmentIds ?? []).slice().sort());
}

it('adds a lost flow again with its pending attachments, leaves a healthy one alone, and does not finish a pull early', async () => {
  const { pull, conditions, attachmentIds } = await pullWithPendingDocuments();
  const parents = queue(QUEUES.assembleCase);
  const pulls = queue(QUEUES.pullSource);
  const fetches = queue(QUEUES.fetchAttachment);
  expect(await producer.flowState(pull)).toBe('missing');

  // Redis has nothing of this pull: the flow comes back with the unfinished task and the pending documents.
  expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ enqueued: 1, retried: 0 });
  expect(await parents.getJobState(assembleJobId(pull.id, pull.attempt))).toBe('waiting-children');
  expect(await pulls.getJobState(pullJobId(conditions.id, pull.attempt))).toBe('waiting');
  expect(await inlineBatches(fetches)).toEqual([attachmentIds]);

  // Again: the flow is there, so nothing is doubled.
  await reconcilePulls(caseDeps(), producer);
  expect(await inlineBatches(fetches)).toEqual([attachmentIds]);
  expect(await pulls.getJobs(['waiting'])).toHaveLength(1);

  // Every task done, attachments still being fetched: the pull waits for them (its parent decides).
  await markTaskFinished(t.db, conditions.id, 'complete', null);
  expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ enqueued: 0, retried: 0 });
  expect((await findPull(t.db, pull.id))?.state).toBe('queued');
});

it('does not put a task job that failed for good back among its waiting parent\'s children while the task row still says running', async () => {
  const { pull, conditions } = await pullWithPendingDocuments();
  const parents = queue(QUEUES.assembleCase);
  const pulls = queue(QUEUES.pullSource);
  await reconcilePulls(caseDeps(), producer);
  expect(await pulls.getJobState(pullJobId(conditions.id, pull.attempt))).toBe('waiting');

  // The task's job fails for good (its row is marked a moment later: not one transaction with Redis).
  const events = new QueueEvents(QUEUES.pullSource, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  let worker: Worker<unknown, void> | undefined;
  try {
    await events.waitUntilReady();
    const failed = new Promise<void>((resolve) => events.once('failed', () => resolve()));
    worker = new Worker<unknown, void>(QUEUES.pullSource, async () => {
      throw new UnrecoverableError('the server answered with records of other patients');
    }, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
    await failed;
  } finally {
    await worker?.close();
    await events.close();
  }
  const parent = await parents.getJob(assembleJobId(pull.id, pull.attempt));
  expect(await parent?.getDependenciesCount()).toMatchObject({ ignored: 1 });

  // The reconciler runs in between: the row is not finished, the job is in Redis (failed): left alone.
  expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ enqueued: 0 });
  const { unprocessed = [] } = (await parent?.getDependencies({ unprocessed: {} })) ?? {};
  expect(unprocessed.filter((key) => key.endsWith(pullJobId(conditions.id, pull.attempt)))).toEqual([]);
});

it('runs a parent that failed for good once more, and if that fails too decides the pull from its tasks', async () => {
  const { pull } = await pullWithPendingDocuments();
  const parents = queue(QUEUES.assembleCase);
  const jobId = assembleJobId(pull.id, pull.attempt);
  const events = new QueueEvents(QUEUES.assembleCase, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  await events.waitUntilReady();
  // The next failure of this parent (the queue's other jobs' events are let pass).
  const failures = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const onFailed = ({ jobId: id }: { jobId: string }): void => {
        if (id !== jobId) return;
        events.off('failed', onFailed);
        resolve();
      };
      events.on('failed', onFailed);
    });
  let failed = failures();
  await parents.add('assemble', { pullId: pull.id, caseId: pull.caseId, attempt: pull.attempt }, { jobId, attempts: 1 });
  const worker = new Worker(QUEUES.assembleCase, async () => {
    throw new Error('database down');
  }, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  try {
    await failed;
    expect(await producer.flowState(pull)).toBe('failed');
    failed = failures();
    expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ retried: 1, finished: 0 });
    // The worker is still failing it.
    await failed;
    expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ retried: 0, finished: 1 });
    // One task of two complete: partial, naming the other; not retried again.
    expect((await findPull(t.db, pull.id))?.state).toBe('partial');
    expect(await parents.getJobState(jobId)).toBe('failed');
    // The case managers are told the bundle needs a rebuild: once, with the pull's state (one transaction).
    expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ retried: 0, finished: 0 });
    const { rows } = await t.db.query<{ type: string; pull_id: string; pull_state: string }>(
      `SELECT type, data->>'pullId' AS pull_id, data->>'pullState' AS pull_state FROM outbox WHERE case_id = $1 AND type = 'assembly.failed'`,
      [pull.caseId],
    );
    expect(rows).toEqual([{ type: 'assembly.failed', pull_id: pull.id, pull_state: 'partial' }]);
  } finally {
    await worker.close();
    await events.close();
  }
});

it('tells the case managers when a finished pull\'s assembly fails on its last attempt (the reconciler no longer sees the pull)', async () => {
  const { pull, conditions } = await pullWithPendingDocuments();
  await markTaskFinished(t.db, conditions.id, 'complete', null);
  // Every assembly of this case fails where it stores its version.
  await t.db.exec(`CREATE FUNCTION refuse_bundle_${pull.caseId.slice(0, 8)}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
    CREATE TRIGGER refuse_bundle BEFORE INSERT ON case_bundles FOR EACH ROW WHEN (NEW.case_id = '${pull.caseId}') EXECUTE FUNCTION refuse_bundle_${pull.caseId.slice(0, 8)}();`);
  const parents = queue(QUEUES.assembleCase);
  const jobId = assembleJobId(pull.id, pull.attempt);
  await parents.add('assemble', { pullId: pull.id, caseId: pull.caseId, attempt: pull.attempt }, { jobId, attempts: 2 });
  const worker = startAssembleCaseWorker({ ...caseDeps(), mappings: () => loadTerminologyMappings() }, () => bullConnectionOptions(TEST_REDIS_URL), prefix, 30_000);
  const failedForGood = async (): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while ((await parents.getJobState(jobId)) !== 'failed') {
      if (Date.now() > deadline) throw new Error(`the parent did not fail for good: ${await parents.getJobState(jobId)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    await failedForGood();
    // Run once more (as after a crash in its last attempt): it fails again, and says so no second time.
    await (await parents.getJob(jobId))?.retry('failed');
    await failedForGood();
  } finally {
    await worker.close();
  }
  // Its first attempt finished the pull (so the reconciler has nothing to do with it)...
  expect(['complete', 'partial']).toContain((await findPull(t.db, pull.id))?.state);
  expect(await reconcilePulls(caseDeps(), producer)).toMatchObject({ enqueued: 0, retried: 0, finished: 0 });
  expect(await pullsAwaitingAssembly(t.db)).not.toContainEqual(expect.objectContaining({ id: pull.id }));
  // ...and its last attempt said the bundle is not there, once; the case waits for a rebuild.
  const { rows } = await t.db.query<{ pull_id: string; reason: string }>(
    `SELECT data->>'pullId' AS pull_id, data->>'reason' AS reason FROM outbox WHERE case_id = $1 AND type = 'assembly.failed'`,
    [pull.caseId],
  );
  expect(rows).toEqual([{ pull_id: pull.id, reason: 'the assembly failed 2 times (error)' }]);
  const { rows: cases } = await t.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [pull.caseId]);
  expect(cases[0]?.status).toBe('collecting_records');
}, 90_000);

it("re-adds a complete task's pending attachments when its job runs again", async () => {
  const { documents, attachmentIds } = await pullWithPendingDocuments();
  const redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-reconcile-'));
  try {
    const deps = pullWorkerDepsForTest(t.db, redis, `${prefix}:fhir:`, dir, 1024);
    const added: string[] = [];
    const outcome = await runPullTask(deps, documents.id, { isLastAttempt: false }, async (found) => void added.push(...found.map((a) => a.id)));
    expect(outcome).toEqual({ state: 'skipped' });
    expect(added.sort()).toEqual(attachmentIds);
  } finally {
    redis.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A case whose one pull is finished `complete` (one Condition page, no documents): its assembly is all that is left. */
async function finishedPull(): Promise<{ id: string; caseId: string; attempt: number }> {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: BASE, resourceType: 'Condition', path: 'Condition' });
  const entry = [{ resource: { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, code: { text: 'Asthma' } } }];
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, BASE));
  await commitPage(t.db, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: [] });
  await markTaskFinished(t.db, task.id, 'complete', null);
  expect(await finishPull(caseDeps(), pullId, { moveCase: false })).toBe('complete');
  return { id: pullId, caseId, attempt: (await findPull(t.db, pullId))?.attempt ?? 1 };
}

const awaiting = async (pullId: string): Promise<boolean> => (await pullsAwaitingAssembly(t.db)).some((p) => p.id === pullId);

/** Waits for the job's next `completed` or `failed` event (the queue's other jobs' events are let pass). */
function nextOutcome(events: QueueEvents, jobId: string): Promise<'completed' | 'failed'> {
  return new Promise((resolve) => {
    const on = (outcome: 'completed' | 'failed') => ({ jobId: id }: { jobId: string }): void => {
      if (id !== jobId) return;
      events.off('completed', onCompleted);
      events.off('failed', onFailed);
      resolve(outcome);
    };
    const onCompleted = on('completed');
    const onFailed = on('failed');
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
  });
}

it("adds a finished pull's assembly again when Redis lost it after the pull finished, and the case gets its bundle", async () => {
  const pull = await finishedPull();
  const parents = queue(QUEUES.assembleCase);
  const jobId = assembleJobId(pull.id, pull.attempt);
  // The parent finished the pull, then Redis lost it: nothing in Redis, no bundle, no alert.
  expect(await producer.flowState(pull)).toBe('missing');
  expect(await awaiting(pull.id)).toBe(true);
  const result = await reconcilePulls(caseDeps(), producer);
  expect(result.assembliesResumed).toBeGreaterThanOrEqual(1);
  expect(await parents.getJobState(jobId)).toBe('waiting');
  // The real parent runs it: the bundle is stored under the pull's trigger, and the case moves on.
  const events = new QueueEvents(QUEUES.assembleCase, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  await events.waitUntilReady();
  const outcome = nextOutcome(events, jobId);
  const worker = startAssembleCaseWorker({ ...caseDeps(), mappings: () => loadTerminologyMappings() }, () => bullConnectionOptions(TEST_REDIS_URL), prefix, 30_000);
  try {
    expect(await outcome).toBe('completed');
  } finally {
    await worker.close();
    await events.close();
  }
  const version = await bundleVersionFor(t.db, pull.caseId, pullAssemblyTrigger(pull.id, pull.attempt));
  expect(version).toBe(1);
  expect(await awaiting(pull.id)).toBe(false);
  const { rows } = await t.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [pull.caseId]);
  expect(rows[0]?.status).toBe('records_complete');
}, 60_000);

it("runs a finished pull's assembly that failed for good without saying so once more, then tells the case managers once", async () => {
  const pull = await finishedPull();
  const parents = queue(QUEUES.assembleCase);
  const jobId = assembleJobId(pull.id, pull.attempt);
  const events = new QueueEvents(QUEUES.assembleCase, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  await events.waitUntilReady();
  // Its parent fails for good and records nothing (the database was down through its last attempts).
  let outcome = nextOutcome(events, jobId);
  await parents.add('assemble', { pullId: pull.id, caseId: pull.caseId, attempt: pull.attempt }, { jobId, attempts: 1 });
  const worker = new Worker(QUEUES.assembleCase, async (job) => {
    if (job.id === jobId) throw new Error('database down');
  }, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  const alerts = async (): Promise<{ trigger: string; reason: string; pull_state: string }[]> =>
    (await t.db.query<{ trigger: string; reason: string; pull_state: string }>(
      `SELECT data->>'trigger' AS trigger, data->>'reason' AS reason, data->>'pullState' AS pull_state FROM outbox WHERE case_id = $1 AND type = 'assembly.failed'`,
      [pull.caseId],
    )).rows;
  try {
    expect(await outcome).toBe('failed');
    expect(await awaiting(pull.id)).toBe(true);
    outcome = nextOutcome(events, jobId);
    await reconcilePulls(caseDeps(), producer);
    // Run once more, and it fails again: no alert yet.
    expect(await outcome).toBe('failed');
    expect(await alerts()).toEqual([]);
    await reconcilePulls(caseDeps(), producer);
    const trigger = pullAssemblyTrigger(pull.id, pull.attempt);
    expect(await alerts()).toEqual([{ trigger, reason: 'the assembly failed for good, also when run once more by the reconciler', pull_state: 'complete' }]);
    // Told once; the pull no longer awaits (a rebuild makes the bundle).
    expect(await awaiting(pull.id)).toBe(false);
    await reconcilePulls(caseDeps(), producer);
    expect(await alerts()).toHaveLength(1);
    expect(await parents.getJobState(jobId)).toBe('failed');
  } finally {
    await worker.close();
    await events.close();
  }
}, 60_000);

it('names the stored version in records.complete when its assembly job runs again after storing it', async () => {
  const pull = await finishedPull();
  const trigger = pullAssemblyTrigger(pull.id, pull.attempt);
  // The version was stored, then the worker died before the case moved on.
  const stored = await assembleCase({ ...caseDeps(), mappings: () => loadTerminologyMappings() }, pull.caseId, { trigger });
  const parents = queue(QUEUES.assembleCase);
  const jobId = assembleJobId(pull.id, pull.attempt);
  const events = new QueueEvents(QUEUES.assembleCase, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  await events.waitUntilReady();
  const outcome = nextOutcome(events, jobId);
  await parents.add('assemble', { pullId: pull.id, caseId: pull.caseId, attempt: pull.attempt }, { jobId, attempts: 1 });
  const worker = startAssembleCaseWorker({ ...caseDeps(), mappings: () => loadTerminologyMappings() }, () => bullConnectionOptions(TEST_REDIS_URL), prefix, 30_000);
  try {
    expect(await outcome).toBe('completed');
  } finally {
    await worker.close();
    await events.close();
  }
  expect((await parents.getJob(jobId))?.returnvalue).toEqual({ state: 'complete', version: stored.version });
  const { rows } = await t.db.query<{ version: number | null }>(`SELECT (data->>'version')::int AS version FROM outbox WHERE case_id = $1 AND type = 'records.complete'`, [pull.caseId]);
  expect(rows).toEqual([{ version: stored.version }]);
  // No second version was made.
  const { rows: versions } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM case_bundles WHERE case_id = $1', [pull.caseId]);
  expect(versions[0]?.n).toBe(1);
}, 60_000);
