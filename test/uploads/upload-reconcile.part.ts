import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ingestJobId } from '../../queues/ingest-upload';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions } from '../../src/redis';
import { committedFixturesDir } from '../../src/fixtures/fixture-child-intake';
import { sampleIntake } from '../support/intake';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * Redis only carries work: an upload whose ingest job was lost (Redis restarted without it, or the
 * API died between committing the upload and queuing the job) is found in PostgreSQL by the
 * reconciler and ingested.
 */
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ RECONCILE_EVERY_MS: '1000' });
});
afterAll(async () => {
  await svc.stop();
});

interface FileView {
  name: string;
  state: string;
}

it('re-queues an upload whose ingest job Redis lost', async () => {
  const cm = await svc.token('case_manager');
  const opened = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  const files = async (): Promise<FileView[]> =>
    ((await (await svc.request('GET', `/api/cases/${opened.id}/uploads`, { token: cm })).json()) as { items: { files: FileView[] }[] }).items.flatMap((u) => u.files);
  const form = new FormData();
  form.append('file', new Blob([fs.readFileSync(path.join(committedFixturesDir(), 'pdf', 'b-gi-consult.pdf'))]), 'consult.pdf');
  const posted = await fetch(`${svc.url}/api/cases/${opened.id}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
  expect(posted.status).toBe(202);
  const { uploadId } = (await posted.json()) as { uploadId: string };
  await eventually(files, (f) => f.length === 1 && f[0]?.state === 'parsed');

  // The job is gone from Redis and the file is back to `received`, as if the work had been lost.
  const queue = new Queue(QUEUES.ingestUpload, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  try {
    // The files are parsed before the job ends (it assembles afterwards); only a finished job can be removed.
    await eventually(() => queue.getJobState(ingestJobId(uploadId)), (state) => state === 'completed');
    await queue.remove(ingestJobId(uploadId));
    expect(await queue.getJob(ingestJobId(uploadId))).toBeUndefined();
  } finally {
    await queue.close();
  }
  await svc.service.db.query("UPDATE uploads SET state = 'received', reason = NULL, metadata = '{}', parsed_at = NULL WHERE upload_id = $1", [uploadId]);
  expect((await files())[0]?.state).toBe('received');

  const after = await eventually(files, (f) => f[0]?.state !== 'received', 30_000);
  expect(after.map((f) => [f.name, f.state])).toEqual([['consult.pdf', 'parsed']]);
}, 60_000);

it('ingests again an upload whose files were read but whose assembly was lost', async () => {
  const cm = await svc.token('case_manager');
  const opened = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  type UploadItem = { uploadId: string; bundleVersion?: number; files: FileView[] };
  const uploads = async (): Promise<UploadItem[]> => ((await (await svc.request('GET', `/api/cases/${opened.id}/uploads`, { token: cm })).json()) as { items: UploadItem[] }).items;
  const form = new FormData();
  form.append('file', new Blob([fs.readFileSync(path.join(committedFixturesDir(), 'pdf', 'b-gi-consult.pdf'))]), 'consult.pdf');
  const posted = await fetch(`${svc.url}/api/cases/${opened.id}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
  const { uploadId } = (await posted.json()) as { uploadId: string };
  const [done] = await eventually(uploads, (u) => u[0]?.bundleVersion !== undefined, 30_000);
  expect(done?.files.map((f) => f.state)).toEqual(['parsed']);

  // The files were read, then the job and its assembly were lost (Redis, a crash): no version for the upload.
  const queue = new Queue(QUEUES.ingestUpload, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  try {
    await eventually(() => queue.getJobState(ingestJobId(uploadId)), (state) => state === 'completed');
    await queue.remove(ingestJobId(uploadId));
  } finally {
    await queue.close();
  }
  await svc.service.db.query('DELETE FROM case_bundles WHERE case_id = $1 AND trigger = $2', [opened.id, `upload:${uploadId}`]);
  expect((await uploads())[0]?.bundleVersion).toBeUndefined();

  // The reconciler finds it in PostgreSQL and the upload is assembled into the bundle again.
  await eventually(uploads, (u) => u[0]?.bundleVersion !== undefined, 30_000);
  const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM case_bundles WHERE case_id = $1 AND trigger = $2', [opened.id, `upload:${uploadId}`]);
  expect(rows[0]?.n).toBe(1);
}, 60_000);

it('answers a resend with the same Idempotency-Key with the upload already stored', async () => {
  const cm = await svc.token('case_manager');
  const opened = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  const pdf = fs.readFileSync(path.join(committedFixturesDir(), 'pdf', 'b-gi-consult.pdf'));
  const other = fs.readFileSync(path.join(committedFixturesDir(), 'pdf', 'a-progress-note.pdf'));
  const send = (key?: string, content: Buffer = pdf): Promise<Response> => {
    const form = new FormData();
    form.append('file', new Blob([content]), 'consult.pdf');
    return fetch(`${svc.url}/api/cases/${opened.id}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cm}`, ...(key ? { 'idempotency-key': key } : {}) },
      body: form,
    });
  };
  const first = await send('portal-7f3a');
  expect(first.status).toBe(202);
  expect(first.headers.get('idempotent-replayed')).toBeNull();
  const again = await send('portal-7f3a');
  expect(again.status).toBe(202);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  const [a, b] = [(await first.json()) as { uploadId: string }, (await again.json()) as { uploadId: string }];
  expect(b.uploadId).toBe(a.uploadId);
  // Another file under the same key is not silently dropped: the key is named.
  const reused = await send('portal-7f3a', other);
  expect(reused.status).toBe(422);
  expect(await reused.json()).toMatchObject({ errors: [{ field: 'Idempotency-Key' }] });
  const another = await send('portal-other');
  expect(((await another.json()) as { uploadId: string }).uploadId).not.toBe(a.uploadId);
  const bad = await send('has spaces in it');
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { detail: string }).detail).toMatch(/Idempotency-Key/);
  const listed = (await (await svc.request('GET', `/api/cases/${opened.id}/uploads`, { token: cm })).json()) as { items: { uploadId: string }[] };
  expect(listed.items).toHaveLength(2);
}, 60_000);
