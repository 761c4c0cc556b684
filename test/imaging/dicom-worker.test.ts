import { createHash } from 'node:crypto';
import path from 'node:path';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { DicomWorkerPool, parseDicomInWorker } from '../../src/imaging/dicom-worker-pool';
import { DICOM_DIR, readCorpus } from './support';

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
