/**
 * Encapsulated Pixel Data of very many empty fragments: the item headers are read through one buffered
 * window (a handful of reads, not one `readSync` per 8-byte header), and past MAX_ENCAPSULATED_ITEMS
 * items the file is refused (`too-many-items`) instead of walked on. Built in the test from the real
 * fragmented JPEG file of the shared corpus (read in place): its bytes up to Pixel Data, then the
 * crafted items.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashAndParseDicomFileSync } from '../../src/imaging';
import { parseDicomFileSync } from '../../src/imaging/dicom-file';
import { MAX_ENCAPSULATED_ITEMS } from '../../src/imaging/dicom-header';
import { meterFileReads } from './read-meter';
import { readCorpus } from './support';

const SOURCE = 'dicomParser__CT0012.fragmented_no_bot_jpeg_baseline.51.dcm';
/** (7FE0,0010) OB, undefined length (explicit VR little endian). */
const PIXEL_DATA_HEADER = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]);

function item(element: number, length = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(length, 4);
  return b;
}

/** The real file up to its Pixel Data value, a Basic Offset Table, `fragments` empty fragments, a delimiter. */
function manyFragments(file: string, fragments: number): void {
  const real = readCorpus(SOURCE);
  const at = real.indexOf(PIXEL_DATA_HEADER);
  expect(at).toBeGreaterThan(132);
  const emptyFragment = item(0xe000);
  const body = Buffer.alloc(8 * fragments);
  for (let i = 0; i < fragments; i++) emptyFragment.copy(body, i * 8);
  fs.writeFileSync(file, Buffer.concat([real.subarray(0, at + PIXEL_DATA_HEADER.length), item(0xe000), body, item(0xe0dd)]));
}

describe('encapsulated Pixel Data of very many empty fragments', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-fragments-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // The cost is counted in file reads, not timed: a loaded CI machine makes wall time say nothing.
  it('500,000 empty fragments (4 MB) parse in a few buffered reads', () => {
    const file = path.join(dir, 'many.dcm');
    manyFragments(file, 500_000);
    const { value: result, meter } = meterFileReads(() => parseDicomFileSync(file));
    expect(result.ok).toBe(true);
    // 4 MB of item headers through a 1 MiB window: a handful of reads (was one per item: 500,000).
    expect(meter.reads).toBeLessThan(20);
    // The hashing path (the ingest worker's) reads through the same window.
    const hashed = meterFileReads(() => hashAndParseDicomFileSync(file));
    expect('result' in hashed.value && hashed.value.result.ok).toBe(true);
    expect(hashed.meter.reads).toBeLessThan(40);
  });

  it('more than MAX_ENCAPSULATED_ITEMS items are refused (too-many-items), without walking on', () => {
    const file = path.join(dir, 'too-many.dcm');
    manyFragments(file, MAX_ENCAPSULATED_ITEMS + 10);
    const { value: result, meter } = meterFileReads(() => parseDicomFileSync(file));
    expect(result).toMatchObject({ ok: false, code: 'too-many-items' });
    if (!result.ok) expect(result.reason).toContain(`more than ${MAX_ENCAPSULATED_ITEMS} items`);
    expect(meter.reads).toBeLessThan(30);
  });

  it('exactly MAX_ENCAPSULATED_ITEMS items (the Basic Offset Table and the fragments) still parse', () => {
    const file = path.join(dir, 'at-limit.dcm');
    manyFragments(file, MAX_ENCAPSULATED_ITEMS - 1);
    expect(parseDicomFileSync(file).ok).toBe(true);
  });
});
