import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import type { Database } from '../../src/db/database';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { ingestUpload } from '../../src/uploads/ingest';
import { inspectPdfInWorker } from '../../src/uploads/pdf-inspect';
import { listUploadFiles } from '../../src/uploads/upload-repository';
import { ingestDeps, insertUpload, type RecordedFile } from '../support/ingest';
import { openBackendDatabase } from '../support/postgres';

/**
 * The ingest job reads an upload's files several at a time (the DICOM thread parses one header while
 * the others' first bytes are read and their verdicts written), but inspects its PDFs one at a time: a
 * PDF inspection holds the whole file in memory and a thread of its own. PGlite with the real
 * migrations (`openBackendDatabase`), a real blob store and DICOM worker pool, the real PDF inspection thread.
 */
const DATA = path.resolve(__dirname, '../../../shared/data');
const CR = fs.readFileSync(path.join(DATA, 'dicom', 'pydicom__dicomdirtests_77654033_CR1_6154'));
const LETTER = fs.readFileSync(path.join(DATA, 'pdf', 'minimal-document.pdf'));

let opened: { db: Database; close(): Promise<void> };
let root: string;
let pool: DicomWorkerPool;

beforeAll(async () => {
  opened = await openBackendDatabase('pglite');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-concurrency-'));
  pool = new DicomWorkerPool({ timeoutMs: 10_000, size: 1 });
});
afterAll(async () => {
  await pool.close();
  await opened.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Counts the calls under way at once of `fn`, wrapped in place of it. */
function concurrency<A extends unknown[], R>(fn: (...args: A) => Promise<R>): { readonly wrapped: (...args: A) => Promise<R>; readonly calls: () => number; readonly most: () => number } {
  let now = 0;
  let most = 0;
  let calls = 0;
  const wrapped = async (...args: A): Promise<R> => {
    calls += 1;
    now += 1;
    most = Math.max(most, now);
    try {
      return await fn(...args);
    } finally {
      now -= 1;
    }
  };
  return { wrapped, calls: () => calls, most: () => most };
}

it('reads DICOM files several at a time and inspects PDFs one at a time; every file gets its verdict', async () => {
  const { db } = opened;
  const inspections = concurrency(inspectPdfInWorker);
  const deps = { ...ingestDeps(db, pool, root), inspectPdf: inspections.wrapped };
  const dicoms: RecordedFile[] = Array.from({ length: 8 }, (_, i) => {
    const data = Buffer.from(CR);
    data.writeUInt32LE(i + 1, 0); // its own content (the preamble is free for any use, PS3.10 §7.1)
    return { name: `IM${i}`, kind: 'dicom', data };
  });
  const pdfs: RecordedFile[] = Array.from({ length: 3 }, (_, i) => ({ name: `letter-${i}.pdf`, kind: 'pdf', data: Buffer.concat([LETTER, Buffer.from(`\n% copy ${i}\n`)]) }));
  const uploadId = await insertUpload(db, deps.blobs, [...dicoms, ...pdfs]);

  const parses = concurrency(pool.parse.bind(pool));
  const parsing = jest.spyOn(pool, 'parse').mockImplementation(parses.wrapped);
  try {
    await ingestUpload(deps, uploadId);
  } finally {
    parsing.mockRestore();
  }

  const rows = await listUploadFiles(db, uploadId);
  expect(rows.filter((r) => r.state === 'received')).toEqual([]);
  expect(rows.filter((r) => r.kind === 'pdf').map((r) => r.state)).toEqual(['parsed', 'parsed', 'parsed']);
  expect(rows.filter((r) => r.kind === 'dicom').every((r) => r.metadata !== null && 'header' in (r.metadata as object))).toBe(true);
  expect({ inspections: inspections.calls(), atOnce: inspections.most() }).toEqual({ inspections: 3, atOnce: 1 });
  expect(parses.calls()).toBe(8);
  expect(parses.most()).toBeGreaterThan(1);
  expect(parses.most()).toBeLessThanOrEqual(4);
});
