import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DUPLICATE_ENTRY_REASON, extractZip, ZipLimitError, type ZipLimits } from '../../src/uploads/zip-archive';
import { checkEntryName } from '../../src/uploads/zip-entry-name';
import { DICOM_DIR, readCorpus } from '../imaging/support';
import { buildZip, type TestZipEntry } from './zip-writer';

const LIMITS: ZipLimits = { maxEntries: 100, maxTotalBytes: 10 * 1024 * 1024, maxRatio: 100, maxEntryBytes: 5 * 1024 * 1024 };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function extract(entries: TestZipEntry[], limits: ZipLimits = LIMITS) {
  const zipPath = path.join(dir, 'upload.zip');
  fs.writeFileSync(zipPath, buildZip(entries));
  return extractZip(zipPath, path.join(dir, 'out'), limits);
}

/** Every file under a folder, relative. */
function tree(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(root, p)).isFile()).sort();
}

describe('extractZip: a CD export', () => {
  it('extracts a DICOMDIR tree, hashes and sniffs each file by content', async () => {
    const cr = readCorpus('pydicom__dicomdirtests_77654033_CR1_6154');
    const pdf = fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'pdf', 'a-progress-note.pdf'));
    const result = await extract([
      { name: 'DICOMDIR', data: Buffer.from('not really'), method: 0 },
      { name: 'DICOM/', method: 0 },
      { name: 'DICOM/77654033/CR1/6154', data: cr },
      { name: 'REPORT\\NOTE.PDF', data: pdf },
      { name: './autorun.inf', data: Buffer.from('[autorun]') },
    ]);
    expect(result.refused).toEqual([]);
    expect(result.files.map((f) => [f.name, f.kind, f.size])).toEqual([
      ['DICOMDIR', 'unknown', 10],
      ['DICOM/77654033/CR1/6154', 'dicom', cr.length],
      ['REPORT/NOTE.PDF', 'pdf', pdf.length],
      ['autorun.inf', 'unknown', 9],
    ]);
    const dicom = result.files[1];
    expect(dicom?.sha256).toBe(createHash('sha256').update(cr).digest('hex'));
    // SHA-1 (FHIR Attachment.hash) in the same pass: a PDF too large to inspect still has one.
    expect(result.files.map((f) => f.sha1Base64)).toEqual(
      [Buffer.from('not really'), cr, pdf, Buffer.from('[autorun]')].map((b) => createHash('sha1').update(b).digest('base64')),
    );
    expect(fs.readFileSync(dicom?.path ?? '')).toEqual(cr);
    // Written under numbers: a CD's folder names (the child's name, an MRN) never become paths.
    expect(result.files.map((f) => path.relative(path.join(dir, 'out'), f.path))).toEqual(['0', '1', '2', '3']);
    expect(tree(path.join(dir, 'out'))).toEqual(['0', '1', '2', '3']);
    expect(fs.existsSync(path.join(DICOM_DIR))).toBe(true);
  });

  it("never puts an entry's name in a path, so file system errors cannot quote it", async () => {
    const result = await extract([
      { name: "Sean O'Brien DOB 2015-03-02 MRN 448812/", method: 0 },
      { name: "Sean O'Brien DOB 2015-03-02 MRN 448812/IM0001", data: Buffer.from('not dicom') },
    ]);
    expect(result.files.map((f) => f.name)).toEqual(["Sean O'Brien DOB 2015-03-02 MRN 448812/IM0001"]);
    expect(result.files.map((f) => f.path)).toEqual([path.join(dir, 'out', '0')]);
    expect(fs.readdirSync(path.join(dir, 'out'))).toEqual(['0']);
  });
});

describe('extractZip: unsafe entries are refused one by one', () => {
  it('path traversal, absolute paths, symlinks, devices, encryption, oversize, duplicates, corrupt data', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 7);
    const result = await extract(
      [
        { name: 'ok.txt', data: Buffer.from('fine') },
        { name: '../../evil.txt', data: Buffer.from('x') },
        { name: 'a/../../evil2.txt', data: Buffer.from('x') },
        { name: '..\\evil3.txt', data: Buffer.from('x') },
        { name: '/etc/passwd', data: Buffer.from('x') },
        { name: 'C:\\Windows\\evil.txt', data: Buffer.from('x') },
        { name: 'link', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 },
        { name: 'fifo', data: Buffer.alloc(0), unixMode: 0o010644 },
        { name: 'secret.dcm', data: Buffer.from('x'), encrypted: true },
        { name: 'huge.bin', data: big, method: 0 },
        { name: 'ok.txt', data: Buffer.from('fine') },
        { name: 'bad-crc.txt', data: Buffer.from('hello'), crc: 1234 },
        { name: 'lies.txt', data: Buffer.from('this inflates to more than declared'), declaredSize: 4 },
        { name: 'exec.sh', data: Buffer.from('#!/bin/sh'), unixMode: 0o100755 },
      ],
      { ...LIMITS, maxRatio: 1_000_000 },
    );
    expect(result.files.map((f) => f.name)).toEqual(['ok.txt', 'exec.sh']);
    expect(result.refused).toEqual([
      { name: '../../evil.txt', reason: 'path traversal (..) refused' },
      { name: 'a/../../evil2.txt', reason: 'path traversal (..) refused' },
      // yauzl already turns backslashes into slashes (strictFileNames: false).
      { name: '../evil3.txt', reason: 'path traversal (..) refused' },
      { name: '/etc/passwd', reason: 'absolute path refused' },
      { name: 'C:/Windows/evil.txt', reason: 'absolute path refused' },
      { name: 'link', reason: 'symbolic link refused' },
      { name: 'fifo', reason: 'not a regular file' },
      { name: 'secret.dcm', reason: 'encrypted entry (password-protected zip)' },
      { name: 'huge.bin', reason: `entry inflates to ${big.length} bytes; at most ${5 * 1024 * 1024} per file` },
      { name: 'ok.txt', reason: 'duplicate entry name: the same content as an earlier entry of that name, which is kept' },
      { name: 'bad-crc.txt', reason: 'corrupt entry: CRC-32 mismatch: the entry is corrupt' },
      { name: 'lies.txt', reason: expect.stringMatching(/^corrupt entry: too many bytes in the stream/) as unknown as string },
    ]);
    // Only what was extracted is left: a corrupt entry's partial file is removed.
    expect(tree(path.join(dir, 'out'))).toEqual(result.files.map((f) => path.relative(path.join(dir, 'out'), f.path)).sort());
    expect(fs.readFileSync(result.files[1]?.path ?? '').toString()).toBe('#!/bin/sh');
    expect(fs.statSync(result.files[1]?.path ?? '').mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(dir, 'evil.txt'))).toBe(false);
  });

  it('a repeated entry name with other content is extracted too, under a distinct name; with the same content it is refused (nothing lost)', async () => {
    const mr = readCorpus('pydicom__MR_small_implicit.dcm');
    const rle = readCorpus('pydicom__MR_small_RLE.dcm');
    const result = await extract([
      { name: 'a/IM1', data: mr },
      { name: 'a/IM1', data: rle },
      { name: 'a/IM1 (2)', data: Buffer.from('an entry that has that name already') },
      { name: 'a\\IM1', data: rle },
      { name: './a/IM1', data: mr },
    ]);
    expect(result.files.map((f) => ({ name: f.name, kind: f.kind, size: f.size, sameNameAs: f.sameNameAs }))).toEqual([
      { name: 'a/IM1', kind: 'dicom', size: mr.length, sameNameAs: undefined },
      // `a/IM1 (2)` is another entry's name: the next free one is taken.
      { name: 'a/IM1 (3)', kind: 'dicom', size: rle.length, sameNameAs: 'a/IM1' },
      { name: 'a/IM1 (2)', kind: 'unknown', size: 35, sameNameAs: undefined },
    ]);
    expect(fs.readFileSync(result.files[1]?.path ?? '')).toEqual(rle);
    // `a\IM1` and `./a/IM1` are `a/IM1` again, each with content already extracted under that name.
    expect(result.refused).toEqual([
      { name: 'a/IM1', reason: DUPLICATE_ENTRY_REASON },
      { name: 'a/IM1', reason: DUPLICATE_ENTRY_REASON },
    ]);
    expect(tree(path.join(dir, 'out'))).toEqual(result.files.map((f) => path.relative(path.join(dir, 'out'), f.path)).sort());
  });

  it('checkEntryName normalises harmless oddities', () => {
    expect(checkEntryName('./a//b/./c')).toEqual({ ok: true, relativePath: 'a/b/c', isDirectory: false });
    expect(checkEntryName('dir/')).toEqual({ ok: true, relativePath: 'dir', isDirectory: true });
    expect(checkEntryName('a\u0000b')).toEqual({ ok: false, reason: 'control character in file name' });
    expect(checkEntryName('\\\\server\\share\\x')).toEqual({ ok: false, reason: 'absolute path refused' });
    expect(checkEntryName('...')).toEqual({ ok: true, relativePath: '...', isDirectory: false });
  });
});

describe('extractZip: archive-wide limits stop the whole archive', () => {
  async function refusal(entries: TestZipEntry[], limits: ZipLimits): Promise<ZipLimitError> {
    const err = await extract(entries, limits).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZipLimitError);
    expect(tree(path.join(dir, 'out'))).toEqual([]);
    return err as ZipLimitError;
  }

  it('too many entries', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('x') }));
    const err = await refusal(entries, { ...LIMITS, maxEntries: 10 });
    expect([err.code, err.message]).toEqual(['too-many-entries', 'the archive has 11 entries; at most 10 are accepted']);
  });

  it('total inflated size', async () => {
    const entries = Array.from({ length: 3 }, (_, i) => ({ name: `f${i}`, data: Buffer.alloc(400_000, i), method: 0 as const }));
    const err = await refusal(entries, { ...LIMITS, maxTotalBytes: 1_000_000 });
    expect([err.code, err.message]).toEqual(['too-large', 'the archive inflates to more than 1000000 bytes']);
  });

  it('a zip bomb (inflation ratio) is refused before anything is written', async () => {
    const err = await refusal([{ name: 'ok', data: Buffer.from('x') }, { name: 'bomb.dcm', data: Buffer.alloc(4 * 1024 * 1024) }], LIMITS);
    expect(err.code).toBe('ratio');
    expect(err.message).toMatch(/^entry bomb\.dcm inflates \d+:1; at most 100:1 \(zip bomb\?\)$/);
  });

  it('a small, very compressible file is not a bomb', async () => {
    const result = await extract([{ name: 'zeros', data: Buffer.alloc(100_000) }]);
    expect(result.files.map((f) => f.size)).toEqual([100_000]);
  });

  it('not a zip at all', async () => {
    const zipPath = path.join(dir, 'fake.zip');
    fs.writeFileSync(zipPath, Buffer.from('PK\u0003\u0004 but nothing else'));
    const err = await extractZip(zipPath, path.join(dir, 'out'), LIMITS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZipLimitError);
    expect((err as ZipLimitError).code).toBe('invalid-zip');
  });
});
