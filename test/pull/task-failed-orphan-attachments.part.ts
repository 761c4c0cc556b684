import { randomUUID } from 'node:crypto';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { findTask, insertPull, type TaskRow } from '../../src/pull/pull-repository';
import { runPullTask } from '../../src/pull/pull-task-runner';
import type { SandboxServer } from '../../src/sandbox';
import type { TestDatabase } from '../support/postgres';
import { insertPullTask, insertTestCase } from '../support/pull-task';
import { startForFile } from '../support/for-file';
import { startPullWorkerWorld } from '../support/pull-worker-world';

/**
 * A pull task's run that committed a page and died before queuing its documents leaves them
 * `pending`; the run that resumes queues them once its query is done. When that run fails for good
 * instead (a later page refused for good), it queues them too, once, before the task ends `failed`:
 * otherwise they were never fetched in this attempt. Real PostgreSQL, Redis and a sandbox EHR.
 */
let t: TestDatabase;
let ehr: SandboxServer;
let deps: PullWorkerDeps;

/** A redirect off the endpoint's origin is refused for good (no retry, no breaker). */
const OFF_ORIGIN = { kind: 'redirect', location: 'https://elsewhere.example/x' } as const;

// Two documents a page: pages at offsets 0, 2 and 4.
startForFile(() => startPullWorkerWorld({ ehr: { defaultCount: 2, maxCount: 2 }, maxAttachmentBytes: 1024 }), (w) => ({ t, ehr, deps } = w));

beforeAll(async () => {
  await ehr.load(
    [1, 2, 3, 4, 5].map((n) => ({
      resourceType: 'DocumentReference' as const,
      id: `doc${n}`,
      status: 'current' as const,
      content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`document ${n}`).toString('base64') } }],
    })),
  );
});

/** A queued DocumentReference task of a new pull, against the sandbox (a loopback http endpoint, as sandboxes are registered). */
async function documentTask(): Promise<TaskRow> {
  const caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: ehr.baseUrl, resourceType: 'DocumentReference', path: 'DocumentReference' });
  await t.db.query('UPDATE endpoints e SET allow_insecure_http = true FROM case_sources s WHERE s.id = $1 AND e.id = s.endpoint_id', [task.sourceId]);
  return task;
}

async function pendingIds(taskId: string): Promise<string[]> {
  const { rows } = await t.db.query<{ id: string }>("SELECT id FROM attachments WHERE task_id = $1 AND state = 'pending' ORDER BY id", [taskId]);
  return rows.map((r) => r.id);
}

it("queues the documents of a page an earlier run committed when the run that resumes fails for good", async () => {
  const task = await documentTask();
  // The first run commits page 1 and dies before its documents are queued.
  await expect(
    runPullTask(deps, task.id, { isLastAttempt: false }, async () => {
      throw new Error('worker killed before queuing the documents');
    }),
  ).rejects.toThrow(/worker killed/);
  const firstPage = await pendingIds(task.id);
  expect(firstPage).toHaveLength(2);
  expect((await findTask(t.db, task.id))?.state).toBe('running');

  // The run that resumes commits page 2, and page 3 is refused for good.
  const refused = ehr.faults.add({ match: 'GET /DocumentReference?*_offset=4*', action: OFF_ORIGIN });
  const queued: string[][] = [];
  try {
    await expect(runPullTask(deps, task.id, { isLastAttempt: false }, async (found) => void queued.push(found.map((a) => a.id).sort()))).rejects.toThrow(
      /outside the endpoint origin/,
    );
  } finally {
    ehr.faults.remove(refused);
  }
  const after = await findTask(t.db, task.id);
  expect(after).toMatchObject({ state: 'failed', pages: 2 });
  // Page 2's documents as it committed, then page 1's: each queued once.
  const all = await pendingIds(task.id);
  const secondPage = all.filter((id) => !firstPage.includes(id));
  expect(secondPage).toHaveLength(2);
  expect(queued).toEqual([secondPage, firstPage]);
});
