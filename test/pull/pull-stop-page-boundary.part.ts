import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { RedisRateLimiter, RequestNotSentError } from '../../src/fhir';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { cancelPulls, findTask, insertPull, type TaskRow } from '../../src/pull/pull-repository';
import { runPullTask, type TaskOutcome } from '../../src/pull/pull-task-runner';
import type { SandboxServer } from '../../src/sandbox';
import type { TestDatabase } from '../support/postgres';
import { insertPullTask, insertTestCase, pagesStoredFor } from '../support/pull-task';
import { eventually } from '../support/service';
import { jest } from '@jest/globals';
import { startForFile } from '../support/for-file';
import { startPullWorkerWorld } from '../support/pull-worker-world';

/**
 * A pull task's run told the process is stopping (`PullWorkerDeps.stopping`) ends at a page boundary,
 * `handed-back`: the page whose request was out commits, no further page is asked for, a request not
 * sent yet (waiting for its endpoint's slot) is withdrawn, and the task is queued again at its cursor,
 * from which the next run goes on, asking for each page once. Real PostgreSQL, Redis and a sandbox EHR
 * (3 pages of 2 Conditions).
 */
let t: TestDatabase;
let ehr: SandboxServer;
let redis: IORedis;
let fhirKeyPrefix: string;
let deps: PullWorkerDeps;

startForFile(() => startPullWorkerWorld({ ehr: { paging: 'offset', defaultCount: 2, maxCount: 2 }, maxAttachmentBytes: 1024 }), (w) => ({ t, ehr, redis, deps, fhirKeyPrefix } = w));

/** A queued Condition task of a new pull, against the sandbox (one request at a time, as insertPullTask registers it). */
async function conditionTask(): Promise<TaskRow> {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: ehr.baseUrl, resourceType: 'Condition', path: 'Condition' });
  await t.db.query('UPDATE endpoints e SET allow_insecure_http = true, max_requests_per_second = 1000 FROM case_sources s WHERE s.id = $1 AND e.id = s.endpoint_id', [task.sourceId]);
  return task;
}

const conditionTargets = (): string[] => ehr.requests().filter((r) => r.method === 'GET' && r.target.startsWith('/Condition')).map((r) => r.target);

beforeEach(() => ehr.reset());
afterEach(() => ehr.faults.clear());

it('stops after the page in flight commits, asks for no further page, and the next run goes on from there', async () => {
  const task = await conditionTask();
  await ehr.load([1, 2, 3, 4, 5, 6].map((n) => ({ resourceType: 'Condition' as const, id: `c${n}`, subject: { reference: 'Patient/p' }, code: { text: `finding ${n}` } })));
  // Page 2 (asked for while page 1 commits) is held until the stop has begun.
  const secondPage = ehr.faults.add({ match: 'GET /Condition?*_offset=2*', action: { kind: 'hold' } });
  const stop = new AbortController();
  const run = runPullTask({ ...deps, stopping: stop.signal }, task.id, { isLastAttempt: false });
  await eventually(async () => conditionTargets().length, (n) => n === 2, 10_000);
  stop.abort();
  ehr.faults.release(secondPage);

  expect(await run).toEqual({ state: 'handed-back', pages: 2 });
  expect(conditionTargets()).toHaveLength(2);
  const left = await findTask(t.db, task.id);
  expect(left).toMatchObject({ state: 'queued', pages: 2, lastError: null, waitingUntil: null });
  expect(left?.nextUrl).toContain('_offset=4');
  expect(await pagesStoredFor(t.db, task.pullId)).toBe(2);

  expect(await runPullTask(deps, task.id, { isLastAttempt: false })).toMatchObject({ state: 'complete', pages: 3, resources: 6 });
  const targets = conditionTargets();
  expect(targets).toHaveLength(3);
  expect(new Set(targets).size).toBe(3);
  expect(await pagesStoredFor(t.db, task.pullId)).toBe(3);
});

/**
 * A run of a new Condition task (one Condition at the EHR) started while another process holds its
 * endpoint's one slot (insertPullTask registers maxConcurrency 1), `beforeStop` done once the task is
 * running and its first request waits for that slot, then the stop fired: what the run answered, and
 * the other process's limiter (to see that nothing of the run's is left holding the slot).
 */
async function stopWhileWaitingForSlot(beforeStop: (task: TaskRow) => Promise<void> = async () => undefined): Promise<{ task: TaskRow; outcome: TaskOutcome; other: RedisRateLimiter }> {
  const task = await conditionTask();
  await ehr.load([{ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p' } }]);
  const { rows } = await t.db.query<{ endpoint_id: string }>('SELECT endpoint_id::text FROM case_sources WHERE id = $1', [task.sourceId]);
  const other = new RedisRateLimiter({ redis, keyPrefix: fhirKeyPrefix, endpointId: rows[0]?.endpoint_id ?? '', limits: { maxRequestsPerSecond: 1000, maxConcurrency: 1 } });
  const held = await other.acquire();
  // Spied after the other process's slot is taken: the run's own wait for it.
  const acquiring = jest.spyOn(RedisRateLimiter.prototype, 'acquire');
  try {
    const stop = new AbortController();
    const run = runPullTask({ ...deps, stopping: stop.signal }, task.id, { isLastAttempt: false });
    // Started (the task marked running) and waiting for the slot it cannot get.
    await eventually(async () => (await findTask(t.db, task.id))?.state, (s) => s === 'running', 10_000);
    await eventually(async () => acquiring.mock.calls.length, (n) => n >= 1, 10_000);
    await beforeStop(task);
    stop.abort();
    return { task, outcome: await run, other };
  } finally {
    acquiring.mockRestore();
    await held.lease.release();
  }
}

it('a run whose first request waits for its endpoint slot hands back without sending it', async () => {
  const { task, outcome, other } = await stopWhileWaitingForSlot();
  expect(outcome).toEqual({ state: 'handed-back', pages: 0 });
  expect(conditionTargets()).toEqual([]);
  expect(await findTask(t.db, task.id)).toMatchObject({ state: 'queued', pages: 0, nextUrl: null, lastError: null });
  // Nothing of the run's is left holding the slot.
  expect(await other.inFlight()).toBe(0);
});

it('a run stopping after its pull was cancelled ends skipped: the task stays cancelled, its job is not handed back', async () => {
  // The case manager cancels the pull while the run waits for its slot; then the process stops.
  const { task, outcome, other } = await stopWhileWaitingForSlot(async (running) => {
    expect(await cancelPulls(t.db, { pullId: running.pullId }, 'case-manager', 'family withdrew')).toMatchObject({ tasks: 1 });
  });
  expect(outcome).toEqual({ state: 'skipped' });
  expect(conditionTargets()).toEqual([]);
  expect(await findTask(t.db, task.id)).toMatchObject({ state: 'cancelled', pages: 0 });
  expect(await other.inFlight()).toBe(0);
});

it("the endpoint limiter's wait for a slot ends when the stop fires, the slot untaken", async () => {
  const endpointId = randomUUID();
  // Polls for the slot back off up to a minute: only the stop can end a long pause early.
  const limiter = new RedisRateLimiter({ redis, keyPrefix: fhirKeyPrefix, endpointId, limits: { maxRequestsPerSecond: 1000, maxConcurrency: 1 }, maxPollMs: 60_000, maxWaitMs: 120_000 });
  const held = await limiter.acquire();
  // The limiter's pause between polls, watched: the stop fires once a pause of at least LONG_PAUSE_MS
  // has begun, and that pause is stretched to ten minutes, so that only the stop can have ended it.
  const LONG_PAUSE_MS = 1024;
  type SlotWait = { waitForSlot(ms: number, stop: AbortSignal | undefined): Promise<void> };
  const proto = RedisRateLimiter.prototype as unknown as SlotWait;
  const waitForSlot = proto.waitForSlot;
  let longPauseBegun = (): void => undefined;
  const longPause = new Promise<void>((resolve) => {
    longPauseBegun = resolve;
  });
  const pauses = jest.spyOn(proto, 'waitForSlot').mockImplementation(function (this: SlotWait, ms, stop) {
    if (ms < LONG_PAUSE_MS) return waitForSlot.call(this, ms, stop);
    const pausing = waitForSlot.call(this, 600_000, stop);
    longPauseBegun();
    return pausing;
  });
  try {
    const stop = new AbortController();
    const waiting = limiter.acquire(stop.signal);
    waiting.catch(() => undefined);
    await longPause;
    stop.abort();
    // Long before the ten-minute pause under way would have ended on its own.
    await expect(waiting).rejects.toBeInstanceOf(RequestNotSentError);
  } finally {
    pauses.mockRestore();
  }
  expect(await limiter.inFlight()).toBe(1);
  await held.lease.release();
  expect(await limiter.inFlight()).toBe(0);
});
