/**
 * A large multi-frame file whose header is longer than 1 MiB (a big private element, as CSA headers and
 * icon images make them) is hashed and parsed without being held in memory: the header parse reads a
 * prefix growing ×16 (64 KiB, 1 MiB, 16 MiB…), not the whole file, and the SHA-256 streams. Every file
 * of the shared corpus still gives exactly what reading it whole gives.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { hashAndParseDicomFileSync } from '../../src/imaging';
import { parseDicomFileSync } from '../../src/imaging/dicom-file';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { HeaderReadBudgetExceeded, MAX_HEADER_READS } from '../../src/imaging/dicom-parse-budget';
import { writeLargeDicom, type LargeDicomLayout } from './large-dicom';
import { meterFileReads } from './read-meter';
import { corpusFiles, DICOM_DIR, manyElementsDicom, readCorpus } from './support';

const MiB = 1024 * 1024;
const UID = '1.2.826.0.1.3680043.2.1143.4242';
const HEADER_PADDING = 2.5 * MiB;
/** The prefix that first holds a 2.5 MiB header: 64 KiB × 16 × 16. */
const PREFIX_READ = 16 * MiB;

async function streamingSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 4 * MiB }), hash);
  return hash.digest('hex');
}

const expectedHeader = {
  studyInstanceUid: UID,
  seriesInstanceUid: `${UID}.0`,
  sopInstanceUid: `${UID}.1`,
  patientId: 'MRN-LARGE',
  numberOfFrames: 200,
  hasPixelData: true,
};

describe('a 128 MiB multi-frame file with a 2.5 MiB header', () => {
  let dir: string;
  let file: string;
  let layout: LargeDicomLayout;
  let sha256: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-large-'));
    file = path.join(dir, 'multiframe.dcm');
    layout = writeLargeDicom(file, { uidRoot: UID, privateBytes: HEADER_PADDING, pixel: { bytes: 128 * MiB }, frames: 200 });
    sha256 = await streamingSha256(file);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is what it claims: a header past the 1 MiB second read, Pixel Data of over a hundred MB', () => {
    expect(layout.pixelDataAt).toBeGreaterThan(2.5 * MiB);
    expect(layout.pixelDataAt).toBeLessThan(3 * MiB);
    expect(layout.size).toBeGreaterThan(128 * MiB);
  });

  it('hash path: the streaming SHA-256 and size, the header with its UIDs; each byte read once, 16 MiB held at most', () => {
    const { value, meter } = meterFileReads(() => hashAndParseDicomFileSync(file));
    expect(value).toEqual({ sha256, size: layout.size, result: { ok: true, header: expect.objectContaining(expectedHeader) } });
    expect(meter.bytesRead).toBe(layout.size);
    expect(meter.largestBuffer).toBe(PREFIX_READ);
    // Before: the whole file (≥ 128 MiB) in one Buffer.
    expect(meter.peakArrayBuffers).toBeLessThan(64 * MiB);
  });

  it('parse path: reads the 16 MiB prefix that holds the header, not the file', () => {
    const { value, meter } = meterFileReads(() => parseDicomFileSync(file));
    expect(value).toEqual({ ok: true, header: expect.objectContaining(expectedHeader) });
    expect(meter.bytesRead).toBe(PREFIX_READ);
    expect(meter.largestBuffer).toBe(PREFIX_READ);
    expect(meter.peakArrayBuffers).toBeLessThan(64 * MiB);
  });
});

describe('a 96 MiB encapsulated file with a 2.5 MiB header', () => {
  const FRAGMENT = 8 * MiB;
  let dir: string;
  let file: string;
  let layout: LargeDicomLayout;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-large-rle-'));
    file = path.join(dir, 'rle.dcm');
    layout = writeLargeDicom(file, { uidRoot: UID, privateBytes: HEADER_PADDING, pixel: { fragments: 12, fragmentBytes: FRAGMENT }, frames: 12 });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Item headers the walk reads where they are: those past the 16 MiB prefix. */
  const pastPrefix = (): number => layout.itemsAt.filter((at) => at + 8 > PREFIX_READ).length;

  it('checks the fragments past the prefix by their item headers only, in both paths', async () => {
    expect(pastPrefix()).toBe(11);
    const sha256 = await streamingSha256(file);
    const header = { ...expectedHeader, numberOfFrames: 12, transferSyntaxUid: '1.2.840.10008.1.2.5' };
    const hashed = meterFileReads(() => hashAndParseDicomFileSync(file));
    expect(hashed.value).toEqual({ sha256, size: layout.size, result: { ok: true, header: expect.objectContaining(header) } });
    expect(hashed.meter.bytesRead).toBe(layout.size + 8 * pastPrefix());
    expect(hashed.meter.largestBuffer).toBe(PREFIX_READ);
    const parsed = meterFileReads(() => parseDicomFileSync(file));
    if (!('result' in hashed.value)) throw new Error(hashed.value.error);
    expect(parsed.value).toEqual(hashed.value.result);
    expect(parsed.meter.bytesRead).toBe(PREFIX_READ + 8 * pastPrefix());
  });

  it('cut inside its last fragment: truncated, said the same way, and still hashed', async () => {
    fs.truncateSync(file, layout.size - 8 - FRAGMENT / 2);
    const sha256 = await streamingSha256(file);
    const truncated = {
      ok: false,
      code: 'truncated',
      reason: `truncated file: Pixel Data (7FE0,0010) fragment 12 declares ${FRAGMENT} bytes but the file ends ${FRAGMENT / 2} bytes early`,
      partial: expect.objectContaining({ sopInstanceUid: `${UID}.1` }),
    };
    const hashed = meterFileReads(() => hashAndParseDicomFileSync(file));
    expect(hashed.value).toEqual({ sha256, size: layout.size - 8 - FRAGMENT / 2, result: truncated });
    expect(hashed.meter.largestBuffer).toBe(PREFIX_READ);
    expect(parseDicomFileSync(file)).toEqual(truncated);
  });
});

describe('hostile headers are stopped as before', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-large-hostile-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`a 5.6 MB header of 700,000 empty elements (over ${MAX_HEADER_READS} reads) is too-large in the hash path, and still hashed`, () => {
    const bytes = manyElementsDicom(700_000, '1.2.826.0.1.3680043.2.1143.77');
    const file = path.join(dir, 'many');
    fs.writeFileSync(file, bytes);
    const tooLarge = { ok: false, code: 'too-large', reason: new HeaderReadBudgetExceeded(MAX_HEADER_READS).message };
    expect(hashAndParseDicomFileSync(file)).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, result: tooLarge });
  });
});

describe('every file of the shared corpus: the same sha256, size and header as reading it whole', () => {
  it.each(corpusFiles())('%s', (name) => {
    const bytes = readCorpus(name);
    const whole = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, result: parseDicomHeader(bytes) };
    const file = path.join(DICOM_DIR, name);
    // The default head, and tiny heads that take every ×16 step up to the whole file.
    for (const headBytes of [undefined, 16, 200]) {
      const options = headBytes === undefined ? {} : { headBytes };
      expect([name, headBytes, hashAndParseDicomFileSync(file, options)]).toEqual([name, headBytes, whole]);
      expect([name, headBytes, parseDicomFileSync(file, options)]).toEqual([name, headBytes, whole.result]);
    }
  });

  it('a file that cannot be read gives an error, no hash', () => {
    expect(hashAndParseDicomFileSync(path.join(DICOM_DIR, 'missing-file'))).toEqual({ error: 'cannot read file: ENOENT' });
    expect(hashAndParseDicomFileSync(DICOM_DIR)).toEqual({ error: 'cannot read file: EISDIR' });
  });
});
