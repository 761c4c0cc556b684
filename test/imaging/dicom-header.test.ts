import path from 'node:path';
import { parseDicomFileSync, parseDicomBuffer } from '../../src/imaging/dicom-file';
import { type DicomHeader, parseDicomHeader } from '../../src/imaging/dicom-header';
import { sniffFileKind } from '../../src/uploads/sniff';
import { corpusFiles, DICOM_DIR, element, expectedMetadata, readCorpus, syntheticDicom } from './support';

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
