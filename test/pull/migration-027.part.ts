import { createHash, randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database';
import { migrate } from '../../src/db/migrator';
import { scanSearchPage } from '../../src/fhir';
import { inlineDataDigest } from '../../src/pull/attachments';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, findTask, insertPull, insertTask, type TaskRow } from '../../src/pull/pull-repository';
import { attachmentsOf } from '../../src/pull/pull-task-runner';
import { databaseWithMigrations, type Backend } from '../support/postgres';
import { migrationsWithout } from '../support/migration-lists';
import { insertTestCase, insertPullTask } from '../support/pull-task';

/**
 * Migration 027 on a populated store, on both backends: raw rows stored without a version are re-keyed
 * by their content hash (nothing else of them changes), inline attachment rows get the digest of the
 * data they were found with, and the same records pulled again afterwards add no raw row and no
 * attachment row (so the upgrade neither loses nor doubles anything).
 */
const BASE = 'https://ehr.example.org/fhir';
const BEFORE_027 = migrationsWithout(27);

/** A database with every migration but 027 applied, and how to drop it. */
const databaseBefore027 = (backend: Backend): Promise<{ db: Database; close(): Promise<void> }> => databaseWithMigrations(backend, BEFORE_027);

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
// Line-wrapped base64 (legal FHIR), written with JSON's \n escape: the digest is of the decoded text.
const data = Buffer.from('a note stored before the upgrade').toString('base64').replace(/(.{12})/g, '$1\n');
const observation = '{"resourceType":"Observation","id":"obs","status":"final","valueString":"unchanged"}';
const document = JSON.stringify({ resourceType: 'DocumentReference', id: 'doc', status: 'current', content: [{ attachment: { contentType: 'text/plain', data } }] });
// A \u escape elsewhere in the resource: left without a digest (PostgreSQL cannot decode every one).
const escaped = '{"resourceType":"DocumentReference","id":"esc","status":"current","description":"caf\\u00e9","content":[{"attachment":{"data":"AAAA"}}]}';
const linked = JSON.stringify({ resourceType: 'DocumentReference', id: 'url', status: 'current', content: [{ attachment: { url: 'Binary/b1' } }] });

/** A raw row and its attachment as a pull before migration 027 stored them (version ''). */
async function storeLegacy(db: Database, task: TaskRow, caseId: string, remoteId: string, text: string, attachment?: { url?: string }): Promise<void> {
  const type = JSON.parse(text).resourceType as string;
  await db.query(
    `INSERT INTO raw_resources (case_id, source_id, resource_type, remote_id, version_id, resource, sha256, fetched_at, pull_id, task_id, page_no)
     VALUES ($1, $2, $3, $4, '', $5::json, $6, now() - interval '1 day', $7, $8, 1)`,
    [caseId, task.sourceId, type, remoteId, text, sha256(text), task.pullId, task.id],
  );
  if (!attachment) return;
  await db.query(
    `INSERT INTO attachments (id, case_id, source_id, task_id, resource_type, remote_id, position, url, inline, state)
     VALUES ($1, $2, $3, $4, $5, $6, 'content[0].attachment', $7, $8, 'fetched')`,
    [randomUUID(), caseId, task.sourceId, task.id, type, remoteId, attachment.url ?? null, attachment.url === undefined],
  );
}

describe.each<Backend>(['postgres', 'pglite'])('migration 027 on %s', (backend) => {
  let store: { db: Database; close(): Promise<void> };
  let caseId: string;
  let task: TaskRow;

  beforeAll(async () => {
    store = await databaseBefore027(backend);
    caseId = randomUUID();
    await insertTestCase(store.db, caseId);
    const pullId = randomUUID();
    await insertPull(store.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
    task = await insertPullTask(store.db, { caseId, pullId, name: 'ehr', baseUrl: BASE, resourceType: 'DocumentReference', path: 'DocumentReference' });
    await storeLegacy(store.db, task, caseId, 'obs', observation);
    await storeLegacy(store.db, task, caseId, 'doc', document, {});
    await storeLegacy(store.db, task, caseId, 'esc', escaped, {});
    await storeLegacy(store.db, task, caseId, 'url', linked, { url: 'Binary/b1' });
    expect(await migrate(store.db)).toEqual([27]);
  }, 120_000);

  afterAll(async () => {
    await store.close();
  });

  it('re-keys versionless raw rows by their content, leaving the rows as they were', async () => {
    const { rows } = await store.db.query<{ remote_id: string; version_id: string; sha256: string; text: string }>(
      'SELECT remote_id, version_id, sha256, resource::text AS text FROM raw_resources WHERE case_id = $1 ORDER BY remote_id',
      [caseId],
    );
    expect(rows).toEqual(
      [['doc', document], ['esc', escaped], ['obs', observation], ['url', linked]].map(([id = '', text = '']) => ({ remote_id: id, version_id: `sha256:${sha256(text)}`, sha256: sha256(text), text })),
    );
  });

  it('gives inline attachment rows the digest of their data, where the resource can be decoded', async () => {
    const { rows } = await store.db.query<{ remote_id: string; data_sha256: string | null; url: string | null }>(
      'SELECT remote_id, data_sha256, url FROM attachments WHERE case_id = $1 ORDER BY remote_id',
      [caseId],
    );
    expect(rows).toEqual([
      { remote_id: 'doc', data_sha256: inlineDataDigest(data), url: null },
      { remote_id: 'esc', data_sha256: null, url: null },
      { remote_id: 'url', data_sha256: null, url: 'Binary/b1' },
    ]);
  });

  it('stores nothing twice when the same records are pulled again after it', async () => {
    const pullId = randomUUID();
    await insertPull(store.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
    const taskId = randomUUID();
    await insertTask(store.db, { id: taskId, pullId, sourceId: task.sourceId, resourceType: 'DocumentReference', queryKey: 'DocumentReference', path: 'DocumentReference', params: {}, remotePatientId: null });
    const again = await findTask(store.db, taskId);
    if (!again) throw new Error('no task');
    const body = Buffer.from(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":${observation}},{"resource":${document}},{"resource":${linked}}]}`);
    const entries = pageEntries(scanSearchPage(body, body.length, BASE));
    const result = await commitPage(store.db, {
      task: again, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: attachmentsOf(entries.entries),
    });
    expect(result).toMatchObject({ committed: true, newAttachments: [] });
    const { rows } = await store.db.query<{ raw: number; attachments: number }>(
      'SELECT (SELECT count(*)::int FROM raw_resources WHERE case_id = $1) AS raw, (SELECT count(*)::int FROM attachments WHERE case_id = $1) AS attachments',
      [caseId],
    );
    expect(rows[0]).toEqual({ raw: 4, attachments: 3 });
  });
});
