import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type PDFDict, PDFDocument, PDFName, PDFString } from 'pdf-lib';
import type { Database } from '../../src/db/database';
import { MIGRATIONS } from '../../src/db/migrations';
import { PgliteDatabase } from '../../src/db/pglite';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { ingestUpload, type IngestDeps } from '../../src/uploads/ingest';
import { listUploadFiles, type UploadFileRow } from '../../src/uploads/upload-repository';
import { ingestDeps, insertUpload, type RecordedFile } from '../support/ingest';
import { copyMigratedPglite } from '../support/pglite-template';
import { buildZip } from './zip-writer';

/**
 * Ingest of uploads holding text PostgreSQL refuses (U+0000) and of uploads the DICOM worker pool
 * cannot read for now (closed at shutdown). PGlite with the real migrations (a copy of the migrated
 * template, test/support/pglite-template.ts), a real blob
 * store and worker pool, the real assembly. Inputs are the auditor's (/tmp/audit-uploads).
 */
const DATA = path.resolve(__dirname, '../../../shared/data');
const CR = fs.readFileSync(path.join(DATA, 'dicom', 'pydicom__dicomdirtests_77654033_CR1_6154'));
const LETTER = fs.readFileSync(path.join(DATA, 'pdf', 'minimal-document.pdf'));

let db: Database;
let root: string;
let pool: DicomWorkerPool;
let deps: IngestDeps;

let dbDir: string;

beforeAll(async () => {
  dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-unstorable-db-'));
  await copyMigratedPglite(dbDir, MIGRATIONS);
  db = await PgliteDatabase.open(dbDir);
});
afterAll(async () => {
  await db.close();
  fs.rmSync(dbDir, { recursive: true, force: true });
});
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-unstorable-'));
  pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 1 });
  deps = ingestDeps(db, pool, root);
});
afterEach(async () => {
  await pool.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A case of the CR file's child (Doe^Archibald) with one upload of `files`; returns the upload id. */
const uploadOf = (files: readonly RecordedFile[]): Promise<string> => insertUpload(db, deps.blobs, files);

/** Name and state; `read` for parsed, and for flagged by identity review (the CR file has no birth date). */
const view = (rows: readonly UploadFileRow[]) =>
  rows.map((r) => ({ name: r.fileName, state: r.state === 'parsed' || r.reason?.startsWith('identity review:') ? 'read' : r.state }));
const hasNul = (row: UploadFileRow): boolean => (row.fileName + (row.reason ?? '') + JSON.stringify(row.metadata)).includes('\0') ||
  JSON.stringify(row.metadata).includes('\\u0000');

describe('text PostgreSQL refuses (U+0000) fails no upload', () => {
  it('a zip entry named with a NUL is listed refused, its name stored with U+FFFD; the valid entries are parsed', async () => {
    const zip = buildZip([{ name: 'DICOM/IM1', data: CR }, { name: 'DICOM/IM\u00002', data: CR }]);
    const uploadId = await uploadOf([{ name: 'cd.zip', kind: 'zip', data: zip }]);
    await expect(ingestUpload(deps, uploadId)).resolves.toMatchObject({ uploadId });
    const rows = await listUploadFiles(db, uploadId);
    expect(view(rows)).toEqual([
      { name: 'cd.zip', state: 'read' },
      { name: 'DICOM/IM1', state: 'read' },
      { name: 'DICOM/IM\uFFFD2', state: 'unparsed' },
    ]);
    expect(rows.some(hasNul)).toBe(false);
  });

  it('a DICOM Patient Name `Doe\\0Archibald` is stored with U+FFFD; the PDF beside it is parsed', async () => {
    const dcm = Buffer.from(CR);
    dcm[dcm.indexOf('Doe^Archibald', 0, 'latin1') + 3] = 0;
    const uploadId = await uploadOf([{ name: 'IM1', kind: 'dicom', data: dcm }, { name: 'report.pdf', kind: 'pdf', data: LETTER }]);
    await expect(ingestUpload(deps, uploadId)).resolves.toMatchObject({ uploadId });
    const rows = await listUploadFiles(db, uploadId);
    expect(view(rows)).toEqual([{ name: 'IM1', state: 'read' }, { name: 'report.pdf', state: 'read' }]);
    expect((rows[0]?.metadata as { header: { patientName: string } }).header.patientName).toBe('Doe\uFFFDArchibald');
    expect(rows.some(hasNul)).toBe(false);
  });

  it('a PDF /Title in UTF-16 without BOM (NULs between letters) is stored with U+FFFD; the DICOM beside it is parsed', async () => {
    const doc = await PDFDocument.create();
    doc.addPage();
    // The Info dictionary itself (pdf-lib's setTitle always writes a BOM): what some scanners write.
    (doc as unknown as { getInfoDict(): PDFDict }).getInfoDict().set(PDFName.of('Title'), PDFString.of('\\000M\\000R\\000I'));
    const pdf = Buffer.from(await doc.save());
    const uploadId = await uploadOf([{ name: 'mri-report.pdf', kind: 'pdf', data: pdf }, { name: 'IM1', kind: 'dicom', data: CR }]);
    await expect(ingestUpload(deps, uploadId)).resolves.toMatchObject({ uploadId });
    const rows = await listUploadFiles(db, uploadId);
    expect(view(rows)).toEqual([{ name: 'mri-report.pdf', state: 'read' }, { name: 'IM1', state: 'read' }]);
    expect((rows[0]?.metadata as { pdf: { title: string } }).pdf.title).toBe('\uFFFDM\uFFFDR\uFFFDI');
    expect(rows.some(hasNul)).toBe(false);
  });
});

describe('a failure of the machine is no verdict on the file', () => {
  it('the pool closed mid-ingest: the job throws, no row says "pool closed", the unread rows stay received; a rerun parses them all', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => {
      const data = Buffer.from(CR);
      data.write(String(i).padStart(4, '0'), data.length - 8, 'latin1');
      return { name: `DICOM/IM${i}`, data };
    });
    const uploadId = await uploadOf([{ name: 'cd.zip', kind: 'zip', data: buildZip(entries) }]);
    // Closed once the zip is extracted and the first file read (the shutdown of a worker process): as
    // the pool answers its first parse, whatever the timing.
    const closing = pool;
    const parse = closing.parse.bind(closing);
    let closed: Promise<void> | undefined;
    const parses = jest.spyOn(closing, 'parse').mockImplementationOnce(async (input) => {
      const result = await parse(input);
      closed = closing.close();
      return result;
    });
    try {
      await expect(ingestUpload(deps, uploadId)).rejects.toThrow(/not read yet, retried later: worker-failed: pool closed/);
    } finally {
      parses.mockRestore();
    }
    expect(closed).toBeDefined();
    await closed;
    const after = await listUploadFiles(db, uploadId);
    expect(after.filter((r) => r.reason?.includes('pool closed'))).toEqual([]);
    expect(after.filter((r) => r.state === 'received').length).toBeGreaterThan(0);
    expect(after.filter((r) => r.state === 'unparsed')).toEqual([]);

    pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 1 });
    await expect(ingestUpload({ ...deps, pool }, uploadId)).resolves.toMatchObject({ files: 41 });
    const rerun = await listUploadFiles(db, uploadId);
    expect(view(rerun).filter((r) => r.state !== 'read')).toEqual([]);
  });
});
