import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { DicomWorkerPool, parseDicomInWorker } from '../../src/imaging/dicom-worker-pool';
import { DICOM_DIR, manyElementsDicom, readCorpus } from './support';

const CT = 'dicomParser__CT1_UNC.explicit_little_endian.dcm';

/** Worker code that says it is ready and then never answers (a stalled parser). */
const HANGING = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', () => { for (;;) {} });
parentPort.postMessage({ type: 'ready' });
`;
/** Worker code that crashes on the first request. */
const CRASHING = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', () => { throw new Error('boom'); });
parentPort.postMessage({ type: 'ready' });
`;

describe('parseDicomInWorker (real worker script)', () => {
  it('parses a path and bytes in a worker thread, same as in-process', async () => {
    const expected = parseDicomHeader(readCorpus(CT));
    expect(await parseDicomInWorker(path.join(DICOM_DIR, CT), { timeoutMs: 10_000 })).toEqual(expected);
    expect(await parseDicomInWorker(readCorpus(CT), { timeoutMs: 10_000 })).toEqual(expected);
  });

  it('a pool parses many files, keeps answers apart, and hashes while it reads', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 2 });
    try {
      const names = ['pydicom__MR_small_implicit.dcm', 'pydicom__no_meta.dcm', CT, 'pydicom__image_dfl.dcm', 'pydicom__MR_truncated.dcm'];
      const results = await Promise.all(names.map((n) => pool.parse(path.join(DICOM_DIR, n))));
      expect(results).toEqual(names.map((n) => parseDicomHeader(readCorpus(n))));
      const hashed = await pool.hashAndParse(path.join(DICOM_DIR, CT));
      expect(hashed).toEqual({ sha256: createHash('sha256').update(readCorpus(CT)).digest('hex'), size: readCorpus(CT).length, result: parseDicomHeader(readCorpus(CT)) });
      expect(await pool.parse(path.join(DICOM_DIR, 'missing-file'))).toMatchObject({ ok: false, code: 'io', reason: 'cannot open file: ENOENT' });
      expect(pool.threadsStarted).toBe(2);
    } finally {
      await pool.close();
    }
  });
});

describe('hard time limit and crashes', () => {
  it('terminates a stalled worker: reason timeout; the next request gets a fresh thread', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 50, source: { eval: HANGING } });
    try {
      const first = await pool.parse(readCorpus(CT));
      expect(first).toEqual({ ok: false, code: 'timeout', reason: 'timeout: no answer within 50 ms; worker terminated' });
      const second = await pool.parse(readCorpus(CT));
      expect(second).toMatchObject({ ok: false, code: 'timeout' });
      expect(pool.threadsStarted).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('a crashing worker gives worker-failed, never a rejection', async () => {
    const result = await parseDicomInWorker(readCorpus(CT), { timeoutMs: 5_000, source: { eval: CRASHING } });
    expect(result).toEqual({ ok: false, code: 'worker-failed', reason: 'worker crashed: boom' });
  });

  it('hashAndParse on a stalled worker reports the timeout without a hash', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 50, source: { eval: HANGING } });
    try {
      expect(await pool.hashAndParse(path.join(DICOM_DIR, CT))).toEqual({ error: 'timeout: no answer within 50 ms; worker terminated', code: 'timeout' });
    } finally {
      await pool.close();
    }
  });

  it('requests after close resolve worker-failed', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 50, source: { eval: HANGING } });
    await pool.close();
    expect(await pool.parse(readCorpus(CT))).toEqual({ ok: false, code: 'worker-failed', reason: 'pool closed' });
  });
});


/** Worker code that fills its heap before it says it is ready (a thread that cannot start). */
const EXHAUSTED_AT_START = `
const kept = [];
for (;;) kept.push({ n: kept.length, s: 'x' + kept.length });
`;

describe('a parsing thread that runs out of memory on a file is a verdict on the file, as in pdf-inspect', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-oom-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('400,000 elements (below the read budget) in a 40 MB thread: too-large with the reason; the pool goes on with a fresh thread', async () => {
    const bytes = manyElementsDicom(400_000, '1.2.826.0.1.3680043.2.1143.99');
    // Below the read budget: in this process's larger heap the same file parses.
    expect(parseDicomHeader(bytes).ok).toBe(true);
    const file = path.join(dir, 'IM000001');
    fs.writeFileSync(file, bytes);
    const pool = new DicomWorkerPool({ timeoutMs: 30_000, maxOldGenerationSizeMb: 40 });
    try {
      expect(await pool.parse(file)).toEqual({
        ok: false,
        code: 'too-large',
        reason: 'too large to read: the DICOM parsing thread ran out of memory on this file (heap limit 40 MB); not indexed',
      });
      expect(await pool.hashAndParse(file)).toEqual({ code: 'too-large', error: expect.stringMatching(/ran out of memory on this file \(heap limit 40 MB\)/) });
      expect(await pool.parse(path.join(DICOM_DIR, CT))).toEqual(parseDicomHeader(readCorpus(CT)));
      expect(pool.threadsStarted).toBe(3);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a thread that runs out of memory before it is ready is no verdict on the file (worker-failed)', async () => {
    const result = await parseDicomInWorker(readCorpus(CT), { timeoutMs: 5_000, maxOldGenerationSizeMb: 16, source: { eval: EXHAUSTED_AT_START } });
    expect(result).toEqual({ ok: false, code: 'worker-failed', reason: 'worker ran out of memory before it was ready' });
  }, 30_000);
});
