import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { inspectPdf } from '../../src/uploads/pdf-inspection';
import { inspectPdfInWorker, pdfLimitReason } from '../../src/uploads/pdf-inspect';

/**
 * PDF inspection in a worker thread with limits (the audit's flate bomb: a 1 MB PDF whose object
 * stream inflates to 1 GB cost 12.6 s of CPU and 1.17 GB RSS in the ingest process). Normal PDFs are
 * read in place from /work/shared/data/pdf.
 */
const SHARED = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'pdf');
const MB = 1024 * 1024;

/** pdf-lib reports recoverable parse problems with console.log/warn; keep test output clean. */
beforeAll(() => {
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
});
afterAll(() => jest.restoreAllMocks());

/** Deflates `mb` MB of spaces, 1 MB at a time (the inflated data never exists in this process). */
async function deflatedSpaces(mb: number): Promise<Buffer> {
  const deflate = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => deflate.once('end', resolve));
  const chunk = Buffer.alloc(MB, 0x20);
  for (let i = 0; i < mb; i++) if (!deflate.write(chunk)) await new Promise((resolve) => deflate.once('drain', resolve));
  deflate.end();
  await ended;
  return Buffer.concat(out);
}

/** A valid one-page PDF with an object stream that inflates to `mb` MB (the auditor's generator). */
async function flateBombPdf(mb: number): Promise<Buffer> {
  const z = await deflatedSpaces(mb);
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  const push = (part: string | Buffer): void => {
    const b = typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
    parts.push(b);
    offset += b.length;
  };
  push('%PDF-1.5\n');
  offsets[1] = offset;
  push('1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n');
  offsets[2] = offset;
  push('2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n');
  offsets[3] = offset;
  push('3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n');
  offsets[4] = offset;
  push(`4 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length ${z.length} >>\nstream\n`);
  push(z);
  push('\nendstream\nendobj\n');
  const xref = offset;
  push(`xref\n0 5\n0000000000 65535 f \n${[1, 2, 3, 4].map((i) => `${String(offsets[i]).padStart(10, '0')} 00000 n \n`).join('')}`);
  push(`trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

/** Runs `work`, sampling this process's RSS every 25 ms; returns its result and the peak growth (MB). */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ result: T; growthMb: number; ms: number }> {
  global.gc?.();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 25);
  const started = Date.now();
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growthMb: (peak - before) / MB, ms: Date.now() - started };
  } finally {
    clearInterval(sample);
  }
}

describe('inspectPdfInWorker', () => {
  it('flags the flate-bomb PDF within the limits, without the process growing by more than 300 MB', async () => {
    const bomb = await flateBombPdf(1024);
    expect(bomb.length).toBeLessThan(2 * MB);
    const timeoutMs = 5_000;
    const { result, growthMb, ms } = await withPeakRss(() => inspectPdfInWorker(bomb, { timeoutMs }));
    expect(result).toEqual({ status: 'limit', reason: 'a stream decodes to more than 64 MB' });
    expect(pdfLimitReason(result.status === 'limit' ? result.reason : '')).toBe(
      'PDF could not be inspected within the limits (a stream decodes to more than 64 MB); kept as received',
    );
    expect(growthMb).toBeLessThan(300);
    // Start-up (the Jest bootstrap transpiles) plus the limit.
    expect(ms).toBeLessThan(timeoutMs + 15_000);
  }, 60_000);

  it('terminates an inspection that exceeds the time limit (decoded-stream cap lifted)', async () => {
    const bomb = await flateBombPdf(256);
    const started = Date.now();
    const result = await inspectPdfInWorker(bomb, { timeoutMs: 200, maxDecodedStreamBytes: Number.POSITIVE_INFINITY });
    expect(result).toEqual({ status: 'limit', reason: 'no answer within 200 ms' });
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);

  it('inspects normal PDFs with the same verdict as inspectPdf', async () => {
    const minimal = fs.readFileSync(path.join(SHARED, 'minimal-document.pdf'));
    expect(await inspectPdfInWorker(minimal)).toEqual({
      status: 'inspected',
      pdf: { ok: true, encrypted: false, pageCount: 1, creationDate: '2022-04-03T16:05:42.000Z' },
    });
    for (const name of ['inline-image.pdf', 'libreoffice-writer-password.pdf']) {
      const bytes = fs.readFileSync(path.join(SHARED, name));
      expect([name, await inspectPdfInWorker(bytes)]).toEqual([name, { status: 'inspected', pdf: await inspectPdf(bytes) }]);
    }
  }, 60_000);

  it('a thread that fails for another reason than the file is no verdict (worker-failed)', async () => {
    const minimal = fs.readFileSync(path.join(SHARED, 'minimal-document.pdf'));
    expect(await inspectPdfInWorker(minimal, { source: { eval: 'process.exit(3)' } })).toEqual({ status: 'worker-failed', reason: 'worker exited (code 3)' });
    const crash = "require('node:worker_threads').parentPort.postMessage({ type: 'ready' }); throw new Error('boom');";
    expect(await inspectPdfInWorker(minimal, { source: { eval: crash } })).toEqual({ status: 'worker-failed', reason: 'worker crashed: boom' });
  }, 30_000);
});
