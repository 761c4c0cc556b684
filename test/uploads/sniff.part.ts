import fs from 'node:fs';
import path from 'node:path';
import { hasPdfHeader, sniffFileKind } from '../../src/uploads/sniff';
import { corpusFiles, readCorpus } from '../imaging/support';
import { buildZip } from './zip-writer';

const PDF_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'pdf');

describe('sniffFileKind', () => {
  it('DICOM by DICM at 128 whatever the name; every corpus file', () => {
    const kinds = corpusFiles().map((f) => [f, sniffFileKind(readCorpus(f).subarray(0, 1024))]);
    expect(kinds.filter(([, k]) => k !== 'dicom')).toEqual([]);
  });

  it('PDFs: shared, project fixtures, and a leading BOM', () => {
    const pdfs = [...fs.readdirSync(PDF_DIR).map((f) => path.join(PDF_DIR, f)), ...fs.readdirSync('fixtures/pdf').map((f) => path.join('fixtures/pdf', f))];
    for (const file of pdfs) expect([file, sniffFileKind(fs.readFileSync(file))]).toEqual([file, 'pdf']);
    expect(sniffFileKind(Buffer.from('\ufeff%PDF-1.7\n', 'utf8'))).toBe('pdf');
    // Leading junk before the header, as viewers tolerate it within the first 1024 bytes; a mere mention is no PDF.
    expect(sniffFileKind(Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n', 'latin1'))).toBe('pdf');
    expect(sniffFileKind(Buffer.concat([Buffer.alloc(128, 7), Buffer.from('%PDF-1.4\n', 'latin1')]))).toBe('pdf');
    expect(sniffFileKind(Buffer.from('see the attached %PDF- file', 'latin1'))).toBe('unknown');
    expect(sniffFileKind(Buffer.concat([Buffer.alloc(1024, 0x41), Buffer.from('%PDF-1.7', 'latin1')]))).toBe('unknown');
  });

  it('zip (local header or empty archive), and unknown', () => {
    expect(sniffFileKind(buildZip([{ name: 'a', data: Buffer.from('x') }]))).toBe('zip');
    expect(sniffFileKind(buildZip([]))).toBe('zip');
    expect(sniffFileKind(Buffer.from('PK\u0007\u0008'))).toBe('unknown');
    expect(sniffFileKind(Buffer.alloc(0))).toBe('unknown');
    expect(sniffFileKind(Buffer.from('GIF89a'))).toBe('unknown');
    const notDicom = Buffer.alloc(200);
    notDicom.write('DICX', 128, 'latin1');
    expect(sniffFileKind(notDicom)).toBe('unknown');
  });
});

describe('hasPdfHeader: a DICOM file that is also a PDF (a polyglot)', () => {
  it('DICOM by its DICM, and a PDF by the %PDF- in its preamble: ingest inspects it as both', () => {
    const mr = readCorpus('pydicom__MR_small_implicit.dcm');
    const preamble = Buffer.alloc(128, 0x20);
    preamble.write('%PDF-1.4\n', 0, 'latin1');
    const polyglot = Buffer.concat([preamble, mr.subarray(128)]);
    expect(sniffFileKind(polyglot.subarray(0, 1024))).toBe('dicom');
    expect(hasPdfHeader(polyglot.subarray(0, 1024))).toBe(true);
    // The real corpus files carry no PDF header.
    expect(corpusFiles().filter((f) => hasPdfHeader(readCorpus(f).subarray(0, 1024)))).toEqual([]);
    // Only within the first 1024 bytes, where readers look.
    expect(hasPdfHeader(Buffer.concat([Buffer.alloc(1024), Buffer.from('%PDF-1.4', 'latin1')]))).toBe(false);
  });
});
