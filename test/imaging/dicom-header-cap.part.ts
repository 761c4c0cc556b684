/**
 * The header prefix is capped (`MAX_HEADER_PREFIX_BYTES`, 64 MiB): a DICOM file whose header does not
 * end there — no Pixel Data, or a value of hundreds of MB before it — is `too-large`, and is no longer
 * read whole into one Buffer outside the parsing thread's heap cap (the audit's `big.js 700`: 7.7 s,
 * 1 GB of RSS). A deflated data set stops as soon as what it inflates to passes `MAX_INFLATED_BYTES`,
 * without reading the rest of the file. The large files are sparse (`ftruncate`): nothing of that size
 * is built in memory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { hashAndParseDicomFileSync } from '../../src/imaging';
import { parseDicomFileSync } from '../../src/imaging/dicom-file';
import { MAX_HEADER_PREFIX_BYTES } from '../../src/imaging/dicom-file-prefix';
import { MAX_INFLATED_BYTES, parseDicomHeader } from '../../src/imaging/dicom-header';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { meterFileReads } from './read-meter';
import { element, explicitVrFileHead, longElement } from './support';
import { tempDir } from '../support/temp-dir';

const MiB = 1024 * 1024;
const SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const UID = '1.2.826.0.1.3680043.2.1143.5151';
const DEFLATED = '1.2.840.10008.1.2.1.99';

let dir: string;
beforeAll(() => {
  dir = tempDir('dicom-header-cap');
});

/**
 * The audit's file: a header whose private (0009,1000) OB value of `valueBytes` (a hole) comes before
 * the study and series UIDs and Pixel Data.
 */
function writeBigValueFile(file: string, valueBytes: number): number {
  const head = Buffer.concat([
    explicitVrFileHead(SOP_CLASS, `${UID}.1`),
    element(0x0008, 0x0060, 'CS', 'OT'),
    element(0x0009, 0x0010, 'LO', 'ACME'),
    longElement(0x0009, 0x1000, 'OB', Buffer.alloc(0), valueBytes),
  ]);
  const tail = Buffer.concat([element(0x0020, 0x000d, 'UI', UID), element(0x0020, 0x000e, 'UI', `${UID}.0`), longElement(0x7fe0, 0x0010, 'OW', Buffer.alloc(2))]);
  fs.writeFileSync(file, head);
  fs.truncateSync(file, head.length + valueBytes);
  fs.appendFileSync(file, tail);
  return head.length + valueBytes + tail.length;
}

describe('a header that does not end within the first 64 MiB', () => {
  let file: string;
  let size: number;
  beforeAll(() => {
    file = path.join(dir, 'big.dcm');
    size = writeBigValueFile(file, 96 * MiB);
  });

  it('parse path: too-large, with a reason that says why; 64 MiB read, not the whole 96 MiB', () => {
    const { value, meter } = meterFileReads(() => parseDicomFileSync(file));
    expect(value).toEqual({
      ok: false,
      code: 'too-large',
      reason: `too large to index: the DICOM header did not end within the first 64 MiB of the file (${size} bytes; no Pixel Data (7FE0,0010) before that: the file has none, or a value of that size comes before it); kept but not indexed`,
    });
    expect(MAX_HEADER_PREFIX_BYTES).toBe(64 * MiB);
    expect(meter.bytesRead).toBe(MAX_HEADER_PREFIX_BYTES);
    expect(meter.largestBuffer).toBe(MAX_HEADER_PREFIX_BYTES);
  });

  it('hash path: the same verdict, and the whole file still hashed through small buffers', () => {
    const { value, meter } = meterFileReads(() => hashAndParseDicomFileSync(file));
    if (!('result' in value)) throw new Error(value.error);
    expect(value.size).toBe(size);
    expect(value.result).toMatchObject({ ok: false, code: 'too-large' });
    expect(meter.bytesRead).toBe(size);
    expect(meter.largestBuffer).toBe(MAX_HEADER_PREFIX_BYTES);
  });

  it('through the worker pool (the ingest path): too-large within seconds', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 60_000 });
    try {
      const started = Date.now();
      const result = await pool.parse(file);
      expect(result).toMatchObject({ ok: false, code: 'too-large', reason: expect.stringMatching(/did not end within the first 64 MiB/) as unknown as string });
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await pool.close();
    }
  }, 90_000);

  it('a smaller cap (option) gives the same verdict; a header that ends within the cap still parses', () => {
    const small = path.join(dir, 'small.dcm');
    writeBigValueFile(small, 3 * MiB);
    expect(parseDicomFileSync(small, { maxHeaderBytes: 1 * MiB })).toMatchObject({ ok: false, code: 'too-large', reason: expect.stringMatching(/within the first 1 MiB/) as unknown as string });
    expect(parseDicomFileSync(small)).toMatchObject({ ok: true, header: { studyInstanceUid: UID, hasPixelData: true } });
  });
});

/** Raw deflate of `zeros` bytes of zeros and then `tail`, written piecewise (sync-flushed pieces concatenate into one stream). */
function deflatedZerosThen(zeros: number, tail: Buffer): Buffer {
  const chunk = Buffer.alloc(MiB);
  const pieces: Buffer[] = [];
  for (let left = zeros; left > 0; left -= MiB) pieces.push(zlib.deflateRawSync(chunk.subarray(0, Math.min(MiB, left)), { finishFlush: zlib.constants.Z_SYNC_FLUSH }));
  pieces.push(zlib.deflateRawSync(tail));
  return Buffer.concat(pieces);
}

describe('a deflated data set that inflates past MAX_INFLATED_BYTES', () => {
  it('stops as soon as a prefix inflates past it: too-large, the rest of the file not read', () => {
    const inflatedZeros = MAX_INFLATED_BYTES + 16 * MiB;
    // The data set: the UIDs, then a private OB value of zeros larger than the cap, then 20 MiB that do not compress.
    const dataSetStart = Buffer.concat([element(0x0020, 0x000d, 'UI', UID), element(0x0020, 0x000e, 'UI', `${UID}.0`), longElement(0x0029, 0x1010, 'OB', Buffer.alloc(0), inflatedZeros)]);
    const deflated = deflatedZerosThen(inflatedZeros, randomBytes(20 * MiB));
    // File Meta Information as writers write it, with its group length (0002,0000) and version (0002,0001).
    const metaBody = Buffer.concat([
      longElement(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
      element(0x0002, 0x0002, 'UI', SOP_CLASS),
      element(0x0002, 0x0003, 'UI', `${UID}.1`),
      element(0x0002, 0x0010, 'UI', DEFLATED),
    ]);
    const groupLength = Buffer.alloc(4);
    groupLength.writeUInt32LE(metaBody.length);
    const preamble = Buffer.alloc(132);
    preamble.write('DICM', 128, 'latin1');
    const meta = Buffer.concat([preamble, element(0x0002, 0x0000, 'UL', groupLength), metaBody]);
    const dataSet = Buffer.concat([element(0x0008, 0x0016, 'UI', SOP_CLASS), element(0x0008, 0x0018, 'UI', `${UID}.1`), dataSetStart]);
    const bytes = Buffer.concat([meta, zlib.deflateRawSync(dataSet, { finishFlush: zlib.constants.Z_SYNC_FLUSH }), deflated]);
    const file = path.join(dir, 'deflate-bomb.dcm');
    fs.writeFileSync(file, bytes);
    expect(bytes.length).toBeGreaterThan(20 * MiB);
    const { value, meter } = meterFileReads(() => parseDicomFileSync(file));
    expect(value).toEqual({ ok: false, code: 'too-large', reason: `deflated data set inflates past ${MAX_INFLATED_BYTES} bytes` });
    // 64 KiB, then 1 MiB: that prefix already inflates past the cap. Before, the whole 20 MiB file was read.
    expect(meter.bytesRead).toBeLessThanOrEqual(MiB);
    // In memory (the whole file), the same verdict.
    expect(parseDicomHeader(bytes)).toEqual(value);
  });
});
