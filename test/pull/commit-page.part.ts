import { createHash, randomUUID } from 'node:crypto';
import { MalformedResponseError, scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, findTask, insertPull, insertTask, type TaskRow } from '../../src/pull/pull-repository';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';

/**
 * A page and its resource rows are stored from the bytes received, in one transaction with the
 * cursor: each resource row is exactly the bytes the page carried (decimals, spacing, key order),
 * hashed as such; a resource that is not valid JSON fails the whole page as malformed (retryable)
 * and stores nothing; committing the same page twice stores nothing twice.
 */
const BASE = 'https://ehr.example.org/fhir';
let t: TestDatabase;
let caseId: string;

async function newTask(): Promise<TaskRow> {
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  return insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: BASE, resourceType: 'Observation', path: 'Observation' });
}

function commit(task: TaskRow, body: Buffer, fetchedAt = new Date()) {
  const entries = pageEntries(scanSearchPage(body, body.length, BASE));
  return t.db.transaction((tx) =>
    commitPage(tx, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt, entries, nextUrl: null, retriesDelta: 0, attachments: [] }),
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  caseId = randomUUID();
  await insertTestCase(t.db, caseId);
}, 60_000);

afterAll(async () => {
  await t.drop();
});

it('stores each resource as the bytes of its page, hashed as received, and a repeated page once', async () => {
  const task = await newTask();
  const observation = '{ "resourceType" : "Observation", "id": "o1", "valueQuantity": { "value": 1.50, "unit": "mg" }, "status": "final" }';
  const body = Buffer.from(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":${observation}}]}`);
  expect(await commit(task, body)).toMatchObject({ committed: true, newAttachments: [] });
  const { rows } = await t.db.query<{ text: string; sha256: string; version_id: string }>(
    'SELECT resource::text AS text, sha256, version_id FROM raw_resources WHERE task_id = $1',
    [task.id],
  );
  // No meta.versionId: keyed by its content (migration 027).
  const sha256 = createHash('sha256').update(observation).digest('hex');
  expect(rows).toEqual([{ text: observation, sha256, version_id: `sha256:${sha256}` }]);
  const page = await t.db.query<{ sha256: string }>('SELECT sha256 FROM raw_pages WHERE task_id = $1', [task.id]);
  expect(page.rows).toEqual([{ sha256: createHash('sha256').update(body).digest('hex') }]);
  // The same page again (a job that ran twice): the cursor guard refuses it, nothing is added.
  expect(await commit(task, body)).toMatchObject({ committed: false, newAttachments: [] });
  const count = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE task_id = $1', [task.id]);
  expect(count.rows[0]?.n).toBe(1);
});

it('fails a page whose resource is not valid JSON as malformed, storing nothing of it', async () => {
  const task = await newTask();
  // Balanced and quoted (the scan follows it), but `tru` is no JSON literal: only parsing finds out.
  const body = Buffer.from(
    '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","id":"ok"}},' +
      '{"resource":{"resourceType":"Observation","id":"bad","valueBoolean":tru}}]}',
  );
  const error = await commit(task, body).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(MalformedResponseError);
  expect((error as MalformedResponseError).message).toMatch(/not valid JSON/);
  const stored = await t.db.query<{ pages: number; rows: number; raw: number }>(
    `SELECT (SELECT pages FROM pull_tasks WHERE id = $1) AS pages,
            (SELECT count(*)::int FROM raw_resources WHERE task_id = $1) AS rows,
            (SELECT count(*)::int FROM raw_pages WHERE task_id = $1) AS raw`,
    [task.id],
  );
  expect(stored.rows[0]).toEqual({ pages: 0, rows: 0, raw: 0 });
});

it('stores a changed resource without meta.versionId as a new row, the same content once, and content going back as a change', async () => {
  // One source (the tasks of later pulls reuse the first task's source).
  const first = await newTask();
  const again = async (): Promise<TaskRow> => {
    const pullId = randomUUID();
    await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
    const taskId = randomUUID();
    await insertTask(t.db, { id: taskId, pullId, sourceId: first.sourceId, resourceType: 'Observation', queryKey: 'Observation', path: 'Observation', params: {}, remotePatientId: null });
    const task = await findTask(t.db, taskId);
    if (!task) throw new Error('no task');
    return task;
  };
  const page = (value: string) => Buffer.from(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","id":"v","status":"final","valueString":"${value}"}}]}`);
  const hashOf = (value: string) => createHash('sha256').update(`{"resourceType":"Observation","id":"v","status":"final","valueString":"${value}"}`).digest('hex');
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  await commit(first, page('A'), at(1));
  await commit(await again(), page('A'), at(2)); // unchanged: nothing new
  await commit(await again(), page('B'), at(3)); // changed: a new row
  await commit(await again(), page('A'), at(4)); // back to A: a change again, under a key of its own
  await commit(await again(), page('A'), at(5)); // unchanged since: nothing new
  const { rows } = await t.db.query<{ version_id: string; sha256: string; fetched_at: Date }>(
    `SELECT version_id, sha256, fetched_at FROM raw_resources WHERE source_id = $1 AND remote_id = 'v' ORDER BY fetched_at`,
    [first.sourceId],
  );
  expect(rows).toEqual([
    { version_id: `sha256:${hashOf('A')}`, sha256: hashOf('A'), fetched_at: at(1) },
    { version_id: `sha256:${hashOf('B')}`, sha256: hashOf('B'), fetched_at: at(3) },
    { version_id: `sha256:${hashOf('A')}@2026-01-01T00:00:04.000000Z`, sha256: hashOf('A'), fetched_at: at(4) },
  ]);
});

it('keys a resource with meta.versionId by it, whatever its content', async () => {
  const task = await newTask();
  const body = Buffer.from('{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","id":"w","meta":{"versionId":"7"},"status":"final"}}]}');
  await commit(task, body);
  const { rows } = await t.db.query<{ version_id: string }>('SELECT version_id FROM raw_resources WHERE task_id = $1', [task.id]);
  expect(rows).toEqual([{ version_id: '7' }]);
});
