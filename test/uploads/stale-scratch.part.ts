/**
 * Scratch files a killed process left (SIGKILL, out of memory: no `abort()` ran) are removed when a
 * process starts on the data folder: blob temp files (`blobs/tmp/*.part`) and ingest folders
 * (`ingest/<zip id>`) that no writer can still be using, while those that may be in use are kept.
 * Real service (role api: no ingest job runs meanwhile), real PostgreSQL, a real data folder.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { STALE_SCRATCH_AFTER_MS } from '../../src/config';
import { startService } from '../../src/service';
import { recordParse } from '../../src/uploads/upload-repository';
import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';
import { buildZip } from './zip-writer';

const LETTER = fs.readFileSync(path.resolve(__dirname, '../../../shared/data/pdf/minimal-document.pdf'));
const TWO_DAYS_AGO = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ ROLE: 'api' });
});
afterAll(async () => {
  await svc.stop();
});

/** Uploads three zips; returns the ids of their rows (all `received`: no worker runs). */
async function uploadThreeZips(): Promise<string[]> {
  const cm = await svc.token('case_manager');
  const created = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
  expect(created.status).toBe(201);
  const caseId = ((await created.json()) as { id: string }).id;
  const form = new FormData();
  for (const n of [1, 2, 3]) form.append('file', new Blob([buildZip([{ name: `DOC${n}.pdf`, data: Buffer.concat([LETTER, Buffer.from(`\n% ${n}\n`)]) }])]), `cd-${n}.zip`);
  const res = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
  expect(res.status).toBe(202);
  return ((await res.json()) as { files: { id: string; kind: string }[] }).files.map((f) => f.id);
}

/** A scratch folder with one extracted file in it, last written `at` (now when absent). */
function scratchFolder(dir: string, at?: Date): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, '1'), LETTER, { mode: 0o600 });
  if (at) {
    fs.utimesSync(path.join(dir, '1'), at, at);
    fs.utimesSync(dir, at, at);
  }
  return dir;
}

function tempFile(dir: string, at?: Date): string {
  const file = path.join(dir, `${randomUUID()}.part`);
  fs.writeFileSync(file, LETTER, { mode: 0o600 });
  if (at) fs.utimesSync(file, at, at);
  return file;
}

it('a process starting on the data folder removes the scratch files of killed writers and keeps those that may be in use', async () => {
  expect(TWO_DAYS_AGO.getTime()).toBeLessThan(Date.now() - STALE_SCRATCH_AFTER_MS);
  const [waiting, waitingStale, extracted] = await uploadThreeZips();
  if (!waiting || !waitingStale || !extracted) throw new Error('three zip rows expected');
  await recordParse(svc.service.db, extracted, { state: 'parsed', metadata: { zip: { files: 1, refused: 0 } } });
  await svc.service.stop();

  const tmp = path.join(svc.config.dataDir, 'blobs', 'tmp');
  const ingest = path.join(svc.config.dataDir, 'ingest');
  const staleTemp = tempFile(tmp, TWO_DAYS_AGO);
  const freshTemp = tempFile(tmp);
  // A zip still waiting to be extracted: its job may be extracting it right now (kept), unless its
  // folder was last written long ago (a retry empties it first anyway).
  const kept = scratchFolder(path.join(ingest, waiting));
  const staleWaiting = scratchFolder(path.join(ingest, waitingStale), TWO_DAYS_AGO);
  // A zip already extracted, and a zip whose upload is gone: no job will use their folders again.
  const done = scratchFolder(path.join(ingest, extracted));
  const orphan = scratchFolder(path.join(ingest, randomUUID()));

  const restarted = await startService(svc.config);
  try {
    expect({
      staleTemp: fs.existsSync(staleTemp),
      freshTemp: fs.existsSync(freshTemp),
      kept: fs.existsSync(path.join(kept, '1')),
      staleWaiting: fs.existsSync(staleWaiting),
      done: fs.existsSync(done),
      orphan: fs.existsSync(orphan),
    }).toEqual({ staleTemp: false, freshTemp: true, kept: true, staleWaiting: false, done: false, orphan: false });
    // Started as usual: the database and Redis answer.
    expect((await fetch(`${restarted.url ?? ''}/readyz`)).status).toBe(200);
  } finally {
    await restarted.stop();
  }
});
