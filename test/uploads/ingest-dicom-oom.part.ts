/**
 * A DICOM file whose header exhausts the parsing thread's heap (below the read budget of
 * `dicom-parse-budget.ts`) is a verdict on that file, as a PDF that exhausts its inspector's is
 * (`pdf-inspect.ts`): listed `unparsed` with the reason, the rest of the upload ingested and
 * assembled. Before, it was `worker-failed`: the job was retried until it failed for good. Real
 * PostgreSQL (a fresh database), a real blob store, the real worker pool with a small heap cap, the
 * real assembly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DicomWorkerPool, outOfMemoryReason } from '../../src/imaging/dicom-worker-pool';
import { ingestUpload, type IngestDeps } from '../../src/uploads/ingest';
import { listUploadFiles } from '../../src/uploads/upload-repository';
import { manyElementsDicom } from '../imaging/support';
import { ingestDeps, insertUpload, type RecordedFile } from '../support/ingest';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const DATA = path.resolve(__dirname, '../../../shared/data');
const CR = fs.readFileSync(path.join(DATA, 'dicom', 'pydicom__dicomdirtests_77654033_CR1_6154'));
const LETTER = fs.readFileSync(path.join(DATA, 'pdf', 'minimal-document.pdf'));
/** Heap cap of the parsing thread in this test: room to start (~25 MB), not for 400,000 elements (~100 MB). */
const HEAP_MB = 40;


let testDb: TestDatabase;
let root: string;
let pool: DicomWorkerPool;
let deps: IngestDeps;

beforeAll(async () => {
  testDb = await createTestDatabase();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-dicom-oom-'));
  pool = new DicomWorkerPool({ timeoutMs: 30_000, size: 1, maxOldGenerationSizeMb: HEAP_MB });
  deps = ingestDeps(testDb.db, pool, root);
});
afterAll(async () => {
  await pool.close();
  await testDb.drop();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A case of the CR file's child (Doe^Archibald) with one upload of `files`; returns the upload id. */
const uploadOf = (files: readonly RecordedFile[]): Promise<string> => insertUpload(testDb.db, deps.blobs, files);

it('a DICOM file that exhausts the parsing thread is listed unparsed (too-large) with the reason; the other files are read and the upload assembled, not retried', async () => {
  const uploadId = await uploadOf([
    { name: 'IM000001', kind: 'dicom', data: manyElementsDicom(400_000, '1.2.826.0.1.3680043.2.1143.66') },
    { name: 'IM000002', kind: 'dicom', data: CR },
    { name: 'letter.pdf', kind: 'pdf', data: LETTER },
  ]);
  const result = await ingestUpload(deps, uploadId);
  expect(result).toMatchObject({ uploadId, files: 3, version: expect.any(Number) });
  const rows = await listUploadFiles(testDb.db, uploadId);
  expect(rows.map((r) => ({ name: r.fileName, state: r.state, reason: r.reason, metadata: r.fileName === 'IM000001' ? r.metadata : undefined }))).toEqual([
    { name: 'IM000001', state: 'unparsed', reason: outOfMemoryReason(HEAP_MB), metadata: { dicom: { code: 'too-large' } } },
    // The CR file has no birth date: identity review flags it; it is read all the same.
    { name: 'IM000002', state: 'flagged', reason: expect.stringMatching(/^identity review:/), metadata: undefined },
    { name: 'letter.pdf', state: 'parsed', reason: null, metadata: undefined },
  ]);
}, 60_000);
