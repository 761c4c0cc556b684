/**
 * A value far longer than its VR allows (PS3.5 §6.2) is never decoded: in Implicit VR every value may
 * declare a 32-bit length, so a file can carry a Patient's Name of hundreds of MB that parses "ok" and
 * would be decoded into one huge string, posted to the main thread and written to the database. The
 * header reader checks the declared length against {@link valueByteBound} first; the field is left
 * out and named, with its length, in `valuesNotRead`.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDicomHeader, valueByteBound, valuesNotReadReason } from '../../src/imaging/dicom-header';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { corpusFiles, implicitVrDicom, readCorpus } from './support';

const HUGE_NAME = Buffer.alloc(16 * 1024 * 1024, 'DOE^ARCHIBALD^');
const LONG_DESCRIPTION = Buffer.alloc(1024 * 1024, 'MRI BRAIN ');

describe('a value far longer than DICOM allows is not decoded', () => {
  it('an implicit VR file with a 16 MiB Patient Name and a 1 MiB Study Description: parsed, both left out, the reason says why', () => {
    const result = parseDicomHeader(implicitVrDicom({ patientName: HUGE_NAME, studyDescription: LONG_DESCRIPTION, patientId: 'MRN-1', birthDate: '20150304' }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { header } = result;
    expect(header).not.toHaveProperty('patientName');
    expect(header).not.toHaveProperty('studyDescription');
    expect(header).toMatchObject({ patientId: 'MRN-1', patientBirthDate: '20150304', modality: 'OT', studyInstanceUid: '1.2.826.0.1.3680043.2.1143.88' });
    expect(header.valuesNotRead).toEqual([
      "Study Description (0008,1030) not read: its value is 1048576 bytes, over the 1024-byte bound for LO (16 × the 64-character maximum of PS3.5 §6.2)",
      "Patient's Name (0010,0010) not read: its value is 16777216 bytes, over the 3104-byte bound for PN (16 × the 194-character maximum of PS3.5 §6.2)",
    ]);
    expect(valuesNotReadReason(header)).toMatch(/^values far longer than DICOM allows were left out: Study Description .*; Patient's Name \(0010,0010\) not read: its value is 16777216 bytes/);
    // What crosses to the main thread and the database stays small.
    expect(JSON.stringify(header).length).toBeLessThan(4096);
  });

  it('the worker pool reading the file from disk (the ingest path: head, larger head, whole file) gives the same header', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-value-length-'));
    const pool = new DicomWorkerPool({ timeoutMs: 20_000 });
    try {
      const bytes = implicitVrDicom({ patientName: HUGE_NAME });
      const file = path.join(dir, 'IM000001');
      fs.writeFileSync(file, bytes);
      const result = await pool.parse(file);
      expect(result).toEqual(parseDicomHeader(bytes));
      expect(result.ok && result.header.valuesNotRead).toEqual([expect.stringMatching(/^Patient's Name \(0010,0010\) not read: its value is 16777216 bytes/)]);
    } finally {
      await pool.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an over-long Study Instance UID: missing-uid, and the reason says the value was too long', () => {
    const result = parseDicomHeader(implicitVrDicom({ studyUid: Buffer.alloc(2 * 1024 * 1024, '1.2.') }));
    expect(result).toMatchObject({
      ok: false,
      code: 'missing-uid',
      reason: 'no studyInstanceUid in the data set (Study Instance UID (0020,000D) not read: its value is 2097152 bytes, over the 1024-byte bound for UI (16 × the 64-character maximum of PS3.5 §6.2))',
    });
  });

  it('a Study Instance UID of 65 characters, or with letters, is invalid-uid: the reason names the attribute and its length, never the value', () => {
    const long = `1.2.826.0.1.3680043.2.1143.${'7'.repeat(38)}`;
    expect(long).toHaveLength(65);
    expect(parseDicomHeader(implicitVrDicom({ studyUid: long }))).toMatchObject({
      ok: false,
      code: 'invalid-uid',
      reason: 'Study Instance UID (0020,000D) is present but not a valid UID (65 characters; at most 64)',
    });
    const letters = parseDicomHeader(implicitVrDicom({ studyUid: '1.2.3.4.5abc' }));
    expect(letters).toMatchObject({
      ok: false,
      code: 'invalid-uid',
      reason: 'Study Instance UID (0020,000D) is present but not a valid UID (12 characters; characters other than digits and dots)',
    });
    expect(letters.ok ? '' : letters.reason).not.toContain('5abc');
    // 64 characters is still a UID.
    const longest = long.slice(0, 64);
    expect(parseDicomHeader(implicitVrDicom({ studyUid: longest }))).toMatchObject({ ok: true, header: { studyInstanceUid: longest } });
    // An invalid SOP Instance UID in the data set and in the File Meta Information: both are no UID.
    expect(parseDicomHeader(implicitVrDicom({ sopUid: '1.2.3.MRN778812' }))).toMatchObject({
      ok: false,
      code: 'invalid-uid',
      reason: 'SOP Instance UID (0008,0018) is present but not a valid UID (15 characters; characters other than digits and dots)',
    });
  });

  it('values over the standard maximum but within the tolerance are still read (writers overrun LO and PN)', () => {
    const name = `${'Doe-Smith-Jones'.repeat(10)}^Archibald`;
    const description = 'CT HEAD WITHOUT CONTRAST, PEDIATRIC LOW DOSE PROTOCOL, AXIAL AND CORONAL REFORMATS, 5 MM AND 1 MM';
    const result = parseDicomHeader(implicitVrDicom({ patientName: name, studyDescription: description }));
    expect(result.ok && { name: result.header.patientName, description: result.header.studyDescription, notRead: result.header.valuesNotRead }).toEqual({
      name,
      description,
      notRead: undefined,
    });
    expect(Buffer.byteLength(name)).toBeGreaterThan(64);
    expect(valueByteBound('PN')).toBe(3104);
  });

  it('no file of the shared corpus has a value left out', () => {
    for (const name of corpusFiles()) {
      const result = parseDicomHeader(readCorpus(name));
      const header = result.ok ? result.header : result.partial;
      expect({ name, notRead: header?.valuesNotRead }).toEqual({ name, notRead: undefined });
    }
  });
});
