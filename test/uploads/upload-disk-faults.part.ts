/**
 * A full or failing disk while an upload is stored or a zip unpacked is our fault and passes: the
 * family is told to try again (503), never that their file was refused, and the ingest job fails to be
 * retried, with its rows still `received`. Nothing half-written stays behind. Real service, real
 * PostgreSQL and Redis; the disk errors are raised by node's file system calls for files under the
 * service's data folder only (`disk-faults.ts`).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from '../../src/blobs/blob-store';
import { storeFileAsBlob } from '../../src/imaging/dicom-ingest';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { ingestUpload, type IngestDeps } from '../../src/uploads/ingest';
import { listUploadFiles } from '../../src/uploads/upload-repository';
import { extractZip, ZipLimitError } from '../../src/uploads/zip-archive';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { ingestDeps, insertUpload } from '../support/ingest';
import { testDatabaseForFile, type TestDatabase } from '../support/postgres';
import type { TestService } from '../support/service';
import { diskError, failDiskUnder, filesUnder, type DiskErrorCode, type DiskFaultAt } from './disk-faults';
import { buildZip } from './zip-writer';

const DATA = path.resolve(__dirname, '../../../shared/data');
const CR = fs.readFileSync(path.join(DATA, 'dicom', 'pydicom__dicomdirtests_77654033_CR1_6154'));
const LETTER = fs.readFileSync(path.join(DATA, 'pdf', 'minimal-document.pdf'));

describe('the upload route on a full or failing disk', () => {
  let svc: TestService;
  let cm: string;

  startForFile(() => startCaseManagerService(), (s) => ({ svc, cm } = s));

  const blobRoot = (): string => path.join(svc.config.dataDir, 'blobs');

  async function upload(caseId: string): Promise<Response> {
    const form = new FormData();
    form.append('file', new Blob([LETTER]), 'letter.pdf');
    form.append('file', new Blob([CR]), 'IM000001');
    return fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
  }

  it.each<[DiskErrorCode, DiskFaultAt]>([
    ['ENOSPC', 'write'],
    ['EIO', 'fsync'],
    ['EIO', 'rename'],
  ])('%s at %s: 503 "try again", nothing stored, no file half-written; the same upload is taken once the disk works', async (code, at) => {
    const caseId = await openCase(svc, cm);
    const before = filesUnder(blobRoot());
    const fault = await failDiskUnder(blobRoot(), code, at);
    let res: Response;
    try {
      res = await upload(caseId);
    } finally {
      fault.restore();
    }
    expect(fault.hits()).toBeGreaterThan(0);
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { detail: string };
    expect(problem.detail).toMatch(/could not be stored right now; please try again later/);
    expect(problem.detail).not.toMatch(/refused|not a PDF|empty|broken/);
    // Nothing of the request is kept: no rows, no temp file, no blob.
    const list = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
    expect(filesUnder(blobRoot())).toEqual(before);

    const again = await upload(caseId);
    expect(again.status).toBe(202);
  });

  it('EIO moving the second file into place, the first already there: 503, and the first is removed again (no blob without a row)', async () => {
    const caseId = await openCase(svc, cm);
    const before = filesUnder(blobRoot());
    // Content no other upload stored: the first file is this request's own in the store.
    const letter = Buffer.concat([LETTER, Buffer.from(`\n% ${randomUUID()}\n`)]);
    const form = new FormData();
    form.append('file', new Blob([letter]), 'letter.pdf');
    form.append('file', new Blob([CR]), 'IM000001');
    const rename = fs.promises.rename;
    let renames = 0;
    const fault = jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (String(from).startsWith(path.join(blobRoot(), 'tmp')) && ++renames === 2) throw diskError('EIO', 'rename', String(from));
      return rename(from, to);
    });
    let res: Response;
    try {
      res = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
    } finally {
      fault.mockRestore();
    }
    expect(renames).toBe(2);
    expect(res.status).toBe(503);
    const list = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
    expect(filesUnder(blobRoot())).toEqual(before);
  });
});

describe('unpacking a zip on a full or failing disk', () => {
  let root: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-disk-'));
  });
  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** `extractZip` of `zipPath` into a new folder `dest` whose every write fails with ENOSPC: what it threw (or returned). */
  async function extractOnFullDisk(zipPath: string, dest: string): Promise<unknown> {
    fs.mkdirSync(dest);
    const fault = await failDiskUnder(dest, 'ENOSPC', 'write');
    try {
      return await extractZip(zipPath, dest, { maxEntries: 100, maxTotalBytes: 2 ** 30, maxRatio: 200, maxEntryBytes: 2 ** 30 }).catch((err: unknown) => err);
    } finally {
      fault.restore();
    }
  }

  it('extractZip: ENOSPC is no verdict on the archive (not a ZipLimitError, no entry refused), and no file is left', async () => {
    const zipPath = path.join(root, 'cd.zip');
    fs.writeFileSync(zipPath, buildZip([{ name: 'DICOM/IM1', data: CR }, { name: 'DICOM/IM2', data: LETTER }]));
    const dest = path.join(root, 'out');
    const outcome = await extractOnFullDisk(zipPath, dest);
    expect(outcome).toBeInstanceOf(Error);
    expect(outcome).not.toBeInstanceOf(ZipLimitError);
    expect((outcome as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(filesUnder(dest)).toEqual([]);
  });

  it('extractZip: a full disk while several entries are being read never throws out of reach of the caller', async () => {
    // Large stored entries, read four at a time: when one entry's write fails, the others have reads
    // under way or waiting. Through one opened archive, a stream destroyed while its read waited made
    // that read throw an uncaught TypeError in yauzl (seen once in CI), failing this test.
    const zipPath = path.join(root, 'big.zip');
    const entries = Array.from({ length: 8 }, (_, i) => ({ name: `DICOM/IM${i}`, data: randomBytes(1024 * 1024), method: 0 as const }));
    fs.writeFileSync(zipPath, buildZip(entries));
    for (let attempt = 0; attempt < 15; attempt++) {
      const dest = path.join(root, `out-${attempt}`);
      const outcome = await extractOnFullDisk(zipPath, dest);
      expect((outcome as NodeJS.ErrnoException).code).toBe('ENOSPC');
      expect(filesUnder(dest)).toEqual([]);
    }
  });

  it('storeFileAsBlob across file systems: a copy cut short by ENOSPC leaves no temp file in the store, and is thrown', async () => {
    const store = new BlobStore(path.join(root, 'blobs'));
    const source = path.join(root, 'IM1');
    fs.writeFileSync(source, CR);
    const sha256 = createHash('sha256').update(CR).digest('hex');
    // The extraction folder on another file system than the blob store (EXDEV), and the copy meeting a full disk half-way.
    const link = jest.spyOn(fs.promises, 'link').mockRejectedValue(Object.assign(new Error('EXDEV: cross-device link not permitted, link'), { code: 'EXDEV', syscall: 'link' }));
    const copy = jest.spyOn(fs.promises, 'copyFile').mockImplementation(async (_from, to) => {
      fs.writeFileSync(String(to), CR.subarray(0, CR.length >> 1));
      throw diskError('ENOSPC', 'copyfile', String(to));
    });
    try {
      await expect(storeFileAsBlob(store, source, sha256)).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(copy).toHaveBeenCalledTimes(1);
    } finally {
      link.mockRestore();
      copy.mockRestore();
    }
    expect(filesUnder(path.join(root, 'blobs'))).toEqual([]);
    await expect(storeFileAsBlob(store, source, sha256)).resolves.toBe('new');
    expect(store.exists(sha256)).toBe(true);
  });

  describe('the ingest job (real PostgreSQL)', () => {
    let testDb: TestDatabase;
    let pool: DicomWorkerPool;
    let deps: IngestDeps;

    testDatabaseForFile((created) => (testDb = created));
    beforeEach(() => {
      pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 1 });
      deps = ingestDeps(testDb.db, pool, root);
    });
    afterEach(async () => {
      await pool.close();
    });

    const zipUpload = (): Promise<string> =>
      insertUpload(testDb.db, deps.blobs, [{ name: 'cd.zip', kind: 'zip', data: buildZip([{ name: 'DICOM/IM1', data: CR }, { name: 'letter.pdf', data: LETTER }]) }]);

    it.each<DiskErrorCode>(['ENOSPC', 'EIO'])('%s while unpacking: the job fails to be retried, the zip stays received with no entry refused; the retry reads it all', async (code) => {
      const uploadId = await zipUpload();
      fs.mkdirSync(deps.workDir, { recursive: true });
      const fault = await failDiskUnder(deps.workDir, code, 'write');
      try {
        await expect(ingestUpload(deps, uploadId)).rejects.toMatchObject({ code });
      } finally {
        fault.restore();
      }
      const after = await listUploadFiles(testDb.db, uploadId);
      expect(after.map((r) => ({ name: r.fileName, state: r.state, reason: r.reason }))).toEqual([{ name: 'cd.zip', state: 'received', reason: null }]);
      expect(filesUnder(deps.workDir)).toEqual([]);

      await ingestUpload(deps, uploadId);
      const done = await listUploadFiles(testDb.db, uploadId);
      expect(done.map((r) => [r.fileName, r.kind, r.state === 'flagged' ? 'parsed' : r.state])).toEqual([
        ['cd.zip', 'zip', 'parsed'],
        ['DICOM/IM1', 'dicom', 'parsed'],
        ['letter.pdf', 'pdf', 'parsed'],
      ]);
    });
  });
});
