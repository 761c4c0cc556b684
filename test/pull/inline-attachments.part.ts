import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from '../../src/blobs/blob-store';
import { scanSearchPage } from '../../src/fhir';
import { fetchInlineAttachments } from '../../src/pull/inline-attachments';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, insertPull } from '../../src/pull/pull-repository';
import { attachmentsOf } from '../../src/pull/pull-task-runner';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';

/**
 * A batch of inline attachments is stored in one job: each decoded into the blob store and checked
 * against its declared size and SHA-1; one over the cap fails for good with the cap named; a row whose
 * resource is gone fails for now (the job throws, the queue retries) and for good on the last attempt;
 * a second run redoes nothing.
 */
const BASE = 'https://ehr.example.org/fhir';
const CAP = 64;
let t: TestDatabase;
let dir: string;
let caseId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-inline-'));
  caseId = randomUUID();
  await insertTestCase(t.db, caseId);
}, 60_000);

afterAll(async () => {
  await t.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('base64');

/** Commits one page of DocumentReferences with inline data; returns the attachment ids by document id. */
async function pageOfDocuments(documents: { id: string; data: Buffer; size?: number; hash?: string }[]): Promise<Map<string, string>> {
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: BASE, resourceType: 'DocumentReference', path: 'DocumentReference' });
  const entry = documents.map((d) => ({
    resource: {
      resourceType: 'DocumentReference', id: d.id, status: 'current',
      // Line-wrapped base64 is legal FHIR (whitespace ignored).
      content: [{ attachment: { contentType: 'text/plain', data: d.data.toString('base64').replace(/(.{8})/g, '$1\n'), size: d.size, hash: d.hash } }],
    },
  }));
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, BASE));
  const attachments = attachmentsOf(entries.entries);
  const result = await commitPage(t.db, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments });
  expect(result.newAttachments.every((a) => a.inline)).toBe(true);
  return new Map(attachments.map((a) => [a.remoteId, a.id]));
}

async function rows(ids: Iterable<string>) {
  const { rows: found } = await t.db.query<{ id: string; state: string; integrity: string | null; blob_sha256: string | null; error: string | null; attempts: number }>(
    'SELECT id, state, integrity, blob_sha256, error, attempts FROM attachments WHERE id = ANY($1::uuid[])',
    [[...ids]],
  );
  return new Map(found.map((r) => [r.id, r]));
}

it('stores each of a batch, checks it against what was declared, and fails one over the cap for good', async () => {
  const ok = Buffer.from('a small document');
  const other = Buffer.from('another document');
  const big = Buffer.alloc(CAP + 1, 7);
  const ids = await pageOfDocuments([
    { id: 'ok', data: ok, size: ok.length, hash: sha1(ok) },
    { id: 'mismatch', data: other, size: other.length + 1 },
    { id: 'big', data: big },
  ]);
  const blobs = new BlobStore(dir);
  const deps = { db: t.db, blobs, maxAttachmentBytes: CAP };
  expect(await fetchInlineAttachments(deps, [...ids.values()], false)).toEqual({ fetched: 2, failed: 1 });
  const stored = await rows(ids.values());
  const okSha = createHash('sha256').update(ok).digest('hex');
  expect(stored.get(ids.get('ok') ?? '')).toMatchObject({ state: 'fetched', integrity: 'verified', blob_sha256: okSha, attempts: 1 });
  expect(stored.get(ids.get('mismatch') ?? '')).toMatchObject({ state: 'fetched', integrity: 'size-mismatch' });
  expect(stored.get(ids.get('big') ?? '')).toMatchObject({ state: 'failed', blob_sha256: null });
  expect(stored.get(ids.get('big') ?? '')?.error).toMatch(/over the 64-byte cap/);
  expect(fs.readFileSync(blobs.pathOf(okSha)).equals(ok)).toBe(true);
  // A second run (the job again) redoes nothing that was fetched.
  expect(await fetchInlineAttachments(deps, [ids.get('ok') ?? ''], false)).toEqual({ fetched: 0, failed: 0 });
});

it('records a transient failure and throws so the queue retries, and fails it for good on the last attempt', async () => {
  const data = Buffer.from('gone');
  const ids = await pageOfDocuments([{ id: 'gone', data }]);
  const id = ids.get('gone') ?? '';
  // The raw resource is not there any more (nothing to decode from).
  await t.db.query(`DELETE FROM raw_resources WHERE case_id = $1 AND remote_id = 'gone'`, [caseId]);
  const deps = { db: t.db, blobs: new BlobStore(dir), maxAttachmentBytes: CAP };
  await expect(fetchInlineAttachments(deps, [id], false)).rejects.toThrow(/retrying/);
  expect((await rows([id])).get(id)).toMatchObject({ state: 'pending', error: 'inline data not found in the stored resource', attempts: 1 });
  expect(await fetchInlineAttachments(deps, [id], true)).toEqual({ fetched: 0, failed: 1 });
  expect((await rows([id])).get(id)).toMatchObject({ state: 'failed', attempts: 2 });
});

/** Waits until `n` statements recording attachment outcomes wait for a lock (10 s at most). */
async function recordsWaitingForLock(n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows: waiting } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE attachments a SET state%'`,
    );
    if ((waiting[0]?.n ?? 0) >= n) return;
    if (Date.now() > deadline) throw new Error(`${n} outcome(s) not waiting for the row lock`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

it('records a row once when two batch jobs hold it at once: its attempt counted once, and fetched is not turned into failed', async () => {
  const data = Buffer.from('one document, two jobs');
  const ids = await pageOfDocuments([{ id: 'twice', data }]);
  const id = ids.get('twice') ?? '';
  const blobs = new BlobStore(dir);
  // Both jobs read the row pending and store their outcome once the row is free (its lock held here):
  // the first stored the data; the second, whose cap is smaller, would fail it for good.
  const [first, second] = await t.db.transaction(async (tx) => {
    await tx.query('SELECT id FROM attachments WHERE id = $1 FOR UPDATE', [id]);
    const a = fetchInlineAttachments({ db: t.db, blobs, maxAttachmentBytes: CAP }, [id], false);
    a.catch(() => undefined);
    await recordsWaitingForLock(1);
    const b = fetchInlineAttachments({ db: t.db, blobs, maxAttachmentBytes: 1 }, [id], false);
    b.catch(() => undefined);
    await recordsWaitingForLock(2);
    return [a, b] as const;
  });
  expect(await first).toEqual({ fetched: 1, failed: 0 });
  // The row was no longer pending when the second recorded: nothing counted, nothing to retry.
  expect(await second).toEqual({ fetched: 0, failed: 0 });
  expect((await rows([id])).get(id)).toMatchObject({ state: 'fetched', attempts: 1, error: null, blob_sha256: createHash('sha256').update(data).digest('hex') });
});
