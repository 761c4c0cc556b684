import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDicomFileSync, parseDicomBuffer } from '../../src/imaging/dicom-file';
import { hashAndParseDicomFileSync } from '../../src/imaging/dicom-file-hash';
import { type DicomHeader, type DicomParseResult, parseDicomHeader } from '../../src/imaging/dicom-header';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { sniffFileKind } from '../../src/uploads/sniff';
import { corpusFiles, DICOM_DIR, element, expectedMetadata, explicitVrFileHead, longElement, readCorpus, syntheticDicom } from './support';

/** expected-metadata.json key → DicomHeader field. */
const FIELDS: ReadonlyArray<readonly [string, keyof DicomHeader]> = [
  ['TransferSyntaxUID', 'transferSyntaxUid'],
  ['SOPClassUID', 'sopClassUid'],
  ['SOPInstanceUID', 'sopInstanceUid'],
  ['Modality', 'modality'],
  ['StudyInstanceUID', 'studyInstanceUid'],
  ['SeriesInstanceUID', 'seriesInstanceUid'],
  ['PatientID', 'patientId'],
  ['PatientName', 'patientName'],
  ['PatientBirthDate', 'patientBirthDate'],
  ['PatientSex', 'patientSex'],
  ['StudyDate', 'studyDate'],
  ['StudyTime', 'studyTime'],
  ['AccessionNumber', 'accessionNumber'],
  ['StudyDescription', 'studyDescription'],
  ['SeriesDescription', 'seriesDescription'],
  ['SeriesNumber', 'seriesNumber'],
  ['InstanceNumber', 'instanceNumber'],
  ['BodyPartExamined', 'bodyPartExamined'],
  ['NumberOfFrames', 'numberOfFrames'],
  ['Rows', 'rows'],
  ['Columns', 'columns'],
];

const expected = expectedMetadata();
const wellFormed = Object.entries(expected).filter(([, e]) => e.agreed);

describe('parseDicomHeader on the shared corpus', () => {
  it('covers every file of ../shared/data/dicom', () => {
    expect(corpusFiles().sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(wellFormed)('%s: fields equal expected-metadata.json', (name, file) => {
    const bytes = readCorpus(name);
    expect(bytes.length).toBe(file.bytes);
    const result = parseDicomHeader(bytes);
    if (!result.ok) throw new Error(`${name}: ${result.reason}`);
    const header = result.header;
    const agreed = file.agreed ?? {};
    for (const [key, field] of FIELDS) {
      const value = header[field];
      if (key in agreed) expect([key, value === undefined ? undefined : String(value)]).toEqual([key, agreed[key]]);
    }
    expect(header.hasPixelData).toBe(name !== 'pydicom__test-SR.dcm');
  });

  it('fields absent from both reference parsers are absent here too', () => {
    for (const [name, file] of wellFormed) {
      const result = parseDicomHeader(readCorpus(name));
      if (!result.ok) throw new Error(result.reason);
      const disagreements = (file as { disagreements?: Record<string, unknown> }).disagreements ?? {};
      for (const [key, field] of FIELDS) {
        if (!(key in (file.agreed ?? {})) && !(key in disagreements)) expect([name, key, result.header[field]]).toEqual([name, key, undefined]);
      }
    }
  });

  it('reads the same header from the file head (64 KiB), a tiny head (forced retries) and the whole buffer', () => {
    for (const name of corpusFiles()) {
      const whole = parseDicomHeader(readCorpus(name));
      expect([name, parseDicomFileSync(path.join(DICOM_DIR, name))]).toEqual([name, whole]);
      expect([name, parseDicomFileSync(path.join(DICOM_DIR, name), { headBytes: 200 })]).toEqual([name, whole]);
      expect([name, parseDicomBuffer(readCorpus(name), { headBytes: 300 })]).toEqual([name, whole]);
    }
  });

  it('recognises the extension-less DICOMDIR member by content', () => {
    const bytes = readCorpus('pydicom__dicomdirtests_77654033_CR1_6154');
    expect(sniffFileKind(bytes.subarray(0, 1024))).toBe('dicom');
    const result = parseDicomHeader(bytes);
    expect(result.ok && result.header.bodyPartExamined).toBe('CSPINE');
  });

  it('reads deflated, big endian, implicit and encapsulated syntaxes without touching pixel data', () => {
    const syntaxes = wellFormed.map(([name]) => {
      const r = parseDicomHeader(readCorpus(name));
      return r.ok ? r.header.transferSyntaxUid : r.reason;
    });
    for (const ts of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.5']) {
      expect(syntaxes).toContain(ts);
    }
  });
});

describe('malformed files give clear reasons', () => {
  it('truncated: reason and the header read before the cut', () => {
    const result = parseDicomHeader(readCorpus('pydicom__MR_truncated.dcm'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('truncated');
    expect(result.reason).toMatch(/truncated file: Pixel Data \(7FE0,0010\) declares 8192 bytes but the file ends 62 bytes early/);
    const values = expectedMetadata()['pydicom__MR_truncated.dcm']?.values ?? {};
    expect(result.partial?.studyInstanceUid).toBe(values['StudyInstanceUID']);
    expect(result.partial?.sopInstanceUid).toBe(values['SOPInstanceUID']);
  });

  it('no preamble: not a Part 10 file, said plainly', () => {
    const bytes = readCorpus('pydicom__no_meta.dcm');
    const result = parseDicomHeader(bytes);
    expect(result).toEqual({
      ok: false,
      code: 'not-part10',
      reason: "not a DICOM Part 10 file: no 'DICM' prefix at byte 128 (PS3.10 §7.1); it looks like a raw data set without preamble and File Meta Information",
    });
    // Sniffed as DICOM so that this reason reaches the family, rather than "unknown file".
    expect(sniffFileKind(bytes.subarray(0, 1024))).toBe('dicom');
  });

  it('no Transfer Syntax UID in the File Meta Information', () => {
    const result = parseDicomHeader(readCorpus('pydicom__meta_missing_tsyntax.dcm'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('no-transfer-syntax');
    expect(result.reason).toContain('Transfer Syntax UID (0002,0010)');
    expect(result.reason).toContain(expectedMetadata()['pydicom__meta_missing_tsyntax.dcm']?.parserErrors?.['dicomParser']);
  });

  it('empty and tiny inputs', () => {
    expect(parseDicomHeader(Buffer.alloc(0))).toMatchObject({ ok: false, code: 'not-part10' });
    expect(parseDicomHeader(Buffer.alloc(131))).toMatchObject({ ok: false, code: 'not-part10' });
    const justMagic = Buffer.alloc(132);
    justMagic.write('DICM', 128, 'latin1');
    expect(parseDicomHeader(justMagic)).toMatchObject({ ok: false, code: 'no-transfer-syntax' });
  });

  it('a DICOMDIR is recognised, not indexed', () => {
    // A minimal DICOMDIR: File Meta with Media Storage SOP Class 1.2.840.10008.1.3.10.
    const header = Buffer.alloc(132);
    header.write('DICM', 128, 'latin1');
    const meta = Buffer.concat([element(0x0002, 0x0002, 'UI', '1.2.840.10008.1.3.10'), element(0x0002, 0x0010, 'UI', '1.2.840.10008.1.2.1')]);
    const result = parseDicomHeader(Buffer.concat([header, meta, element(0x0004, 0x1130, 'CS', 'CD')]));
    expect(result).toMatchObject({ ok: false, code: 'dicomdir' });
  });
});

/**
 * The real encapsulated files of the corpus (RLE, JPEG, JPEG-LS, JPEG 2000; one and many fragments),
 * cut in memory: the corpus stays as it is, read in place.
 */
const ENCAPSULATED = [
  'pydicom__MR_small_RLE.dcm',
  'pydicom__MR_small_jp2klossless.dcm',
  'pydicom__MR_small_jpeg_ls_lossless.dcm',
  'dicomParser__CT0012.fragmented_no_bot_jpeg_baseline.51.dcm',
  'pydicom__examples_ybr_color.dcm',
  'pydicom-data__RG3_J2KI.dcm',
];

const PIXEL_DATA_TAG = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);

/** Where the items of a file's top-level encapsulated Pixel Data are: start and length of each (BOT first), and the delimiter. */
function pixelItems(bytes: Buffer): { items: { at: number; length: number }[]; delimiterAt: number } {
  // (7FE0,0010) OB or OW, undefined length: the last one is the top-level element (an icon's comes before).
  let start = -1;
  for (let i = bytes.indexOf(PIXEL_DATA_TAG); i >= 0; i = bytes.indexOf(PIXEL_DATA_TAG, i + 1)) {
    if (bytes.readUInt32LE(i + 8) === 0xffffffff) start = i + 12;
  }
  const items: { at: number; length: number }[] = [];
  for (let at = start; ; ) {
    const length = bytes.readUInt32LE(at + 4);
    if (bytes.readUInt16LE(at + 2) === 0xe0dd) return { items, delimiterAt: at };
    items.push({ at, length });
    at += 8 + length;
  }
}

describe('truncated encapsulated Pixel Data is damaged, as a truncated native one is', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-cut-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /**
   * The same verdict from the whole buffer, from a 300-byte head (item headers read where they are) and
   * from a file on disk, parsed or hashed while read.
   */
  function parsedEveryWay(name: string, bytes: Buffer): DicomParseResult {
    const whole = parseDicomHeader(bytes);
    expect([name, parseDicomBuffer(bytes, { headBytes: 300 })]).toEqual([name, whole]);
    const file = path.join(tmp, name);
    fs.writeFileSync(file, bytes);
    expect([name, parseDicomFileSync(file, { headBytes: 300 })]).toEqual([name, whole]);
    expect([name, parseDicomFileSync(file)]).toEqual([name, whole]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect([name, hashAndParseDicomFileSync(file, { headBytes: 300 })]).toEqual([name, { sha256, size: bytes.length, result: whole }]);
    return whole;
  }

  it.each(ENCAPSULATED)('%s: a fragment that runs past the end of the file', (name) => {
    const bytes = readCorpus(name);
    const { items } = pixelItems(bytes);
    const last = items[items.length - 1];
    expect(last && items.length >= 2 && last.length > 16).toBe(true);
    if (!last) return;
    const cut = bytes.subarray(0, last.at + 8 + (last.length >> 1));
    const result = parsedEveryWay(name, cut);
    expect(result).toMatchObject({ ok: false, code: 'truncated' });
    if (result.ok) return;
    expect(result.reason).toBe(
      `truncated file: Pixel Data (7FE0,0010) fragment ${items.length - 1} declares ${last.length} bytes but the file ends ${last.length - (last.length >> 1)} bytes early`,
    );
    // What was read before the cut is kept, as for other damaged files.
    const intact = parseDicomHeader(bytes);
    expect(intact.ok && result.partial?.sopInstanceUid === intact.header.sopInstanceUid).toBe(true);
  });

  it('a file cut inside an item header, or a few bytes into the first fragment', () => {
    const name = 'pydicom__MR_small_RLE.dcm';
    const bytes = readCorpus(name);
    const { items } = pixelItems(bytes);
    const first = items[1];
    if (!first) throw new Error('no fragment');
    const inHeader = parsedEveryWay(name, bytes.subarray(0, first.at + 5));
    expect(inHeader).toMatchObject({ ok: false, code: 'truncated', reason: `truncated file: it ends inside the header of Pixel Data (7FE0,0010) fragment 1, at byte ${first.at + 5}` });
    expect(parsedEveryWay(name, bytes.subarray(0, first.at + 8 + 3))).toMatchObject({ ok: false, code: 'truncated', reason: expect.stringMatching(/fragment 1 declares \d+ bytes but the file ends/) });
  });

  it('a damaged item tag is malformed; a file that only lacks the final delimiter is read, with a warning', () => {
    const name = 'dicomParser__CT0012.fragmented_no_bot_jpeg_baseline.51.dcm';
    const bytes = readCorpus(name);
    const { items, delimiterAt } = pixelItems(bytes);
    const damaged = Buffer.from(bytes);
    damaged.writeUInt16LE(0xe00d, (items[2]?.at ?? 0) + 2);
    expect(parsedEveryWay(name, damaged)).toMatchObject({ ok: false, code: 'malformed', reason: expect.stringMatching(/no item of defined length where fragment 2 should be/) });
    const noDelimiter = parsedEveryWay(name, bytes.subarray(0, delimiterAt));
    expect(noDelimiter.ok).toBe(true);
    if (noDelimiter.ok) expect(noDelimiter.header.warnings).toEqual([expect.stringMatching(/no Sequence Delimitation Item/)]);
  });

  it('the worker pool (the ingest path) says so too', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 1 });
    try {
      const bytes = readCorpus('pydicom__examples_ybr_color.dcm');
      const file = path.join(tmp, 'ybr-cut.dcm');
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 1000));
      expect(await pool.parse(file)).toMatchObject({ ok: false, code: 'truncated', reason: expect.stringMatching(/^truncated file: Pixel Data \(7FE0,0010\) fragment 30 declares/) });
    } finally {
      await pool.close();
    }
  });
});

describe('numbers FHIR cannot hold', () => {
  it('leaves out a negative or oversized series or instance number (FHIR unsignedInt)', () => {
    const parsed = parseDicomHeader(syntheticDicom({ studyUid: '1.2.3.4', seriesNumber: '-1', instanceNumber: '999999999999' }));
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(parsed.header.studyInstanceUid).toBe('1.2.3.4');
    expect(parsed.header.seriesNumber).toBeUndefined();
    expect(parsed.header.instanceNumber).toBeUndefined();
    const fits = parseDicomHeader(syntheticDicom({ seriesNumber: '7', instanceNumber: '2147483647' }));
    if (!fits.ok) throw new Error(fits.reason);
    expect(fits.header).toMatchObject({ seriesNumber: 7, instanceNumber: 2147483647 });
  });
});

describe('a file cut before its Pixel Data is truncated, not an image without pixels', () => {
  it.each([
    // Implicit VR: cut inside a value after the group 0020 UIDs; dicom-parser ends the parse quietly.
    ['pydicom__MR_small_implicit.dcm', 1500],
    // Explicit VR: cut exactly on an element boundary; only the image SOP class says pixels are due.
    ['pydicom__examples_rgb_color.dcm', 1108],
  ])('%s cut to %i bytes', (name, bytes) => {
    const result = parseDicomHeader(readCorpus(name).subarray(0, bytes));
    expect(result).toMatchObject({ ok: false, code: 'truncated', reason: expect.stringMatching(/^truncated file: /) });
    expect(parseDicomBuffer(readCorpus(name).subarray(0, bytes), { headBytes: 300 })).toEqual(result);
    // The whole file still parses.
    expect(parseDicomHeader(readCorpus(name))).toMatchObject({ ok: true, header: { hasPixelData: true } });
  });

  it('every cut of an implicit VR file between its File Meta Information and Pixel Data is truncated', () => {
    const bytes = readCorpus('pydicom__MR_small_implicit.dcm');
    const pixelAt = bytes.indexOf(PIXEL_DATA_TAG);
    // From past the File Meta Information (the SOP class read) to the Pixel Data element header.
    for (let cut = 400; cut <= pixelAt; cut += 7) {
      expect([cut, parseDicomHeader(bytes.subarray(0, cut))]).toEqual([cut, expect.objectContaining({ ok: false, code: 'truncated' })]);
    }
  });

  it('an element that declares more bytes than the file holds is named', () => {
    const result = parseDicomHeader(readCorpus('pydicom__MR_small_implicit.dcm').subarray(0, 1500));
    expect(result).toMatchObject({ reason: 'truncated file: (0028,1051) declares 4 bytes but the file ends 2 bytes early' });
  });

  it('an end-of-file warning from dicom-parser is a cut', () => {
    const bytes = readCorpus('pydicom__MR_small_implicit.dcm');
    // Cut inside a sequence of undefined length: dicom-parser warns "eof encountered…" and stops.
    const cuts = [...Array(bytes.indexOf(PIXEL_DATA_TAG)).keys()].filter((n) => n > 400);
    const warned = cuts
      .map((n) => parseDicomHeader(bytes.subarray(0, n)))
      .find((r) => !r.ok && /dicom-parser: eof encountered/.test(r.reason));
    expect(warned).toMatchObject({ ok: false, code: 'truncated' });
  });

  it('valid files without pixels still parse: SR, and an image class is only asked for pixels when it is one', () => {
    const sr = parseDicomHeader(readCorpus('pydicom__test-SR.dcm'));
    expect(sr).toMatchObject({ ok: true, header: { hasPixelData: false, sopClassUid: '1.2.840.10008.5.1.4.1.1.88.33' } });
    // A Key Object Selection document (1.2.840.10008.5.1.4.1.1.88.59) and a Grayscale Softcopy
    // Presentation State (1.2.840.10008.5.1.4.1.1.11.1): complete, and without pixels by design.
    for (const sopClass of ['1.2.840.10008.5.1.4.1.1.88.59', '1.2.840.10008.5.1.4.1.1.11.1']) {
      const file = withoutPixelData(sopClass);
      expect([sopClass, parseDicomHeader(file)]).toEqual([sopClass, expect.objectContaining({ ok: true })]);
    }
    const secondaryCapture = withoutPixelData('1.2.840.10008.5.1.4.1.1.7');
    expect(parseDicomHeader(secondaryCapture)).toMatchObject({ ok: false, code: 'truncated', reason: expect.stringMatching(/image storage class/) });
  });
});

/** A complete explicit VR little endian file of `sopClass` with the four UIDs and no Pixel Data. */
function withoutPixelData(sopClass: string): Buffer {
  return Buffer.concat([
    explicitVrFileHead(sopClass, '1.2.3.4.5.6.9'),
    element(0x0008, 0x0060, 'CS', 'KO'),
    element(0x0020, 0x000d, 'UI', '1.2.3.4.5'),
    element(0x0020, 0x000e, 'UI', '1.2.3.4.5.6'),
  ]);
}

/**
 * An RLE (encapsulated) Secondary Capture built with the test helpers: its Pixel Data (empty Basic
 * Offset Table, one 16-byte fragment) preceded by an Extended Offset Table (7FE0,0001) and its Lengths
 * (7FE0,0002), both OV, and the Encapsulated Pixel Data Value Total Length (7FE0,0003), UV — valid
 * since 2019 (PS3.3 C.7.6.3).
 */
function withExtendedOffsetTable(): Buffer {
  const u64 = (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const item = (group: number, elementNumber: number, length: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(group, 0);
    b.writeUInt16LE(elementNumber, 2);
    b.writeUInt32LE(length, 4);
    return b;
  };
  return Buffer.concat([
    explicitVrFileHead('1.2.840.10008.5.1.4.1.1.7', '1.2.3.4.5.6.64', '1.2.840.10008.1.2.5'),
    element(0x0008, 0x0060, 'CS', 'OT'),
    element(0x0020, 0x000d, 'UI', '1.2.3.4.5'),
    element(0x0020, 0x000e, 'UI', '1.2.3.4.5.6'),
    longElement(0x7fe0, 0x0001, 'OV', u64(0)),
    longElement(0x7fe0, 0x0002, 'OV', u64(16)),
    longElement(0x7fe0, 0x0003, 'UV', u64(16)),
    longElement(0x7fe0, 0x0010, 'OB', Buffer.concat([item(0xfffe, 0xe000, 0), item(0xfffe, 0xe000, 16), Buffer.alloc(16, 0x11), item(0xfffe, 0xe0dd, 0)]), 0xffffffff),
  ]);
}

describe('64-bit VRs before Pixel Data (OV, SV, UV): dicom-parser 1.8.21 misreads their length (cornerstonejs/dicomParser#284)', () => {
  it('a valid file with an Extended Offset Table parses, from the whole buffer and from a small head', () => {
    const bytes = withExtendedOffsetTable();
    const whole = parseDicomHeader(bytes);
    expect(whole).toMatchObject({ ok: true, header: { hasPixelData: true, sopInstanceUid: '1.2.3.4.5.6.64', transferSyntaxUid: '1.2.840.10008.1.2.5' } });
    expect(whole.ok && whole.header.warnings).toEqual([]);
    expect(parseDicomBuffer(bytes, { headBytes: 300 })).toEqual(whole);
  });

  it('cut inside a fragment, it is truncated as any encapsulated file; cut inside the table, too', () => {
    const bytes = withExtendedOffsetTable();
    expect(parseDicomHeader(bytes.subarray(0, bytes.length - 16))).toMatchObject({
      ok: false,
      code: 'truncated',
      reason: 'truncated file: Pixel Data (7FE0,0010) fragment 1 declares 16 bytes but the file ends 8 bytes early',
    });
    const tableAt = bytes.indexOf(Buffer.from([0xe0, 0x7f, 0x01, 0x00, 0x4f, 0x56]));
    for (const cut of [tableAt + 10, tableAt + 16, tableAt + 20]) {
      expect([cut, parseDicomHeader(bytes.subarray(0, cut))]).toEqual([cut, expect.objectContaining({ ok: false, code: 'truncated' })]);
    }
  });
});
