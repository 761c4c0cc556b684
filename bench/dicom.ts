/**
 * `npm run bench:dicom` — DICOM header ingest throughput.
 *
 * Corpus: the shared DICOM files (../shared/data/dicom, 17 files of 0.3–518 KB, 3 malformed), copied
 * COPIES times into a temp folder, each copy made unique by its index written into the 128-byte
 * preamble (free for any use, PS3.10 §7.1), so every file is a new blob.
 *
 * Measured in the same run, on the same files:
 *  - plain read: `readFileSync` of every file, one thread (the baseline);
 *  - ingest: hash (SHA-256) + header parse + store into the content-addressed blob store (hard link),
 *    through `ingestDicomFiles` with a `DicomWorkerPool` of one thread per core (parsing off the main
 *    thread with a hard time limit; sixteen files at a time);
 *  - ingest inline: the same work on the main thread only (for comparison);
 *  - ingest durable: as ingest, plus an fdatasync of each file before it is linked (crash-safe store);
 * each hot (page cache warm) and, where possible, cold (each file's pages evicted with
 * `dd iflag=nocache count=0`, i.e. posix_fadvise DONTNEED, before the pass).
 *
 * `ingestDicomFiles` is a library path: the service does not call it. Then, the same files through the
 * service's own path (`dicom-service.ts`: HTTP upload, then the `ingest-upload` job), as files and as
 * one zip (a CD export), `PASSES` passes, as rows of their own beside the same plain read.
 *
 * Target (perf-limits §6): ingest ≥ 0.5× plain-read throughput.
 */
import { execFileSync } from 'node:child_process';
import { hash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BlobStore } from '../src/blobs/blob-store';
import { parseDicomBuffer } from '../src/imaging/dicom-file';
import { type DicomFileToIngest, ingestDicomFiles, storeFileAsBlob } from '../src/imaging/dicom-ingest';
import { DicomWorkerPool } from '../src/imaging/dicom-worker-pool';
import { FILES_PER_UPLOAD, servicePasses, type ServicePass } from './dicom-service';
import { type BenchFigure, fmtInt, fmtRatio, machineInfo, MB, table, writeResult } from './support';

const SOURCE_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'dicom');
const COPIES = Number(process.env['DICOM_BENCH_COPIES'] ?? 20);
const PASSES = Number(process.env['DICOM_BENCH_PASSES'] ?? 3);
const TARGET_RATIO = 0.5;

interface Pass {
  readonly seconds: number;
  readonly files: number;
  readonly bytes: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

function makeCorpus(dir: string): DicomFileToIngest[] {
  const sources = fs.readdirSync(SOURCE_DIR).filter((f) => !f.endsWith('.json')).sort();
  const files: DicomFileToIngest[] = [];
  for (let copy = 0; copy < COPIES; copy++) {
    const sub = path.join(dir, `c${copy}`);
    fs.mkdirSync(sub, { recursive: true });
    for (const name of sources) {
      const bytes = fs.readFileSync(path.join(SOURCE_DIR, name));
      // Unique content per copy: the index in the preamble (a file without preamble gets it appended).
      if (bytes.length >= 132 && bytes.toString('latin1', 128, 132) === 'DICM') bytes.writeUInt32LE(copy + 1, 0);
      const out = path.join(sub, name);
      fs.writeFileSync(out, bytes.length >= 132 && bytes.toString('latin1', 128, 132) === 'DICM' ? bytes : Buffer.concat([bytes, Buffer.from([copy])]));
      files.push({ path: out, name: `c${copy}/${name}` });
    }
  }
  return files;
}

let canEvict: boolean | undefined;
/** Drops the files' pages from the page cache (posix_fadvise DONTNEED via dd); false if impossible. */
function evict(files: readonly DicomFileToIngest[]): boolean {
  if (canEvict === false) return false;
  try {
    for (const f of files) execFileSync('dd', [`if=${f.path}`, 'iflag=nocache', 'count=0', 'status=none']);
    canEvict = true;
  } catch {
    canEvict = false;
  }
  return canEvict;
}

function sizeOf(files: readonly DicomFileToIngest[]): number {
  return files.reduce((n, f) => n + fs.statSync(f.path).size, 0);
}

function plainRead(files: readonly DicomFileToIngest[]): Pass {
  const start = performance.now();
  let bytes = 0;
  for (const f of files) bytes += fs.readFileSync(f.path).length;
  return { seconds: (performance.now() - start) / 1000, files: files.length, bytes };
}

/**
 * Empties the blob store: `fresh` removes everything (each blob then also creates its `aa/bb` folders,
 * ~0.35 ms per mkdir on this ext4 VM); otherwise only the blob files go and the folders stay, as in a
 * store in steady state (after some 65k blobs nearly every `aa/bb` folder exists).
 */
function resetStore(root: string, fresh: boolean): void {
  if (fresh || !fs.existsSync(root)) {
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  for (const entry of fs.readdirSync(root, { recursive: true }) as string[]) {
    const p = path.join(root, entry);
    if (/^[0-9a-f]{64}$/.test(path.basename(entry)) && fs.statSync(p).isFile()) fs.unlinkSync(p);
  }
}

async function ingest(
  files: readonly DicomFileToIngest[],
  pool: DicomWorkerPool,
  root: string,
  durable: boolean,
  fresh = true,
): Promise<Pass & { ok: number; failed: number }> {
  resetStore(root, fresh);
  const store = new BlobStore(root);
  const start = performance.now();
  const results = await ingestDicomFiles(files, { pool, store, durable, concurrency: 16 });
  const seconds = (performance.now() - start) / 1000;
  const stored = results.filter((r) => r.stored === 'new').length;
  if (stored !== files.length) throw new Error(`stored ${stored} of ${files.length}`);
  return {
    seconds,
    files: files.length,
    bytes: results.reduce((n, r) => n + (r.size ?? 0), 0),
    ok: results.filter((r) => r.result.ok).length,
    failed: results.filter((r) => !r.result.ok).length,
  };
}

async function ingestInline(files: readonly DicomFileToIngest[], root: string): Promise<Pass> {
  fs.rmSync(root, { recursive: true, force: true });
  const store = new BlobStore(root);
  const start = performance.now();
  let bytes = 0;
  for (const f of files) {
    const data = fs.readFileSync(f.path);
    const sha256 = hash('sha256', data, 'hex');
    parseDicomBuffer(data);
    await storeFileAsBlob(store, f.path, sha256, false);
    bytes += data.length;
  }
  return { seconds: (performance.now() - start) / 1000, files: files.length, bytes };
}

function rate(p: Pass): { filesPerS: number; mbPerS: number } {
  return { filesPerS: p.files / p.seconds, mbPerS: p.bytes / MB / p.seconds };
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-dicom-'));
  const threads = os.availableParallelism();
  const pool = new DicomWorkerPool({ timeoutMs: 5_000, size: threads });
  try {
    const files = makeCorpus(path.join(work, 'files'));
    const totalBytes = sizeOf(files);
    const blobRoot = path.join(work, 'blobs');
    // Warm up: page cache, JIT, worker threads.
    plainRead(files);
    await ingest(files, pool, blobRoot, false);

    const runs: Record<string, Pass[]> = { read: [], ingest: [], warm: [], inline: [], durable: [], readCold: [], ingestCold: [], warmCold: [] };
    let outcome = { ok: 0, failed: 0 };
    for (let i = 0; i < PASSES; i++) {
      runs['read']?.push(plainRead(files));
      const r = await ingest(files, pool, blobRoot, false);
      outcome = { ok: r.ok, failed: r.failed };
      runs['ingest']?.push(r);
      runs['warm']?.push(await ingest(files, pool, blobRoot, false, false));
      runs['inline']?.push(await ingestInline(files, blobRoot));
      runs['durable']?.push(await ingest(files, pool, blobRoot, true));
      if (evict(files)) runs['readCold']?.push(plainRead(files));
      if (evict(files)) runs['ingestCold']?.push(await ingest(files, pool, blobRoot, false));
      if (evict(files)) runs['warmCold']?.push(await ingest(files, pool, blobRoot, false, false));
    }
    await pool.close();
    const service = await servicePasses(files, PASSES);
    const servicePass = (pick: (p: ServicePass) => number): Pass[] => service.map((p) => ({ seconds: pick(p), files: p.files, bytes: p.bytes }));
    runs['serviceUpload'] = servicePass((p) => p.uploadSeconds);
    runs['serviceIngest'] = servicePass((p) => p.ingestSeconds);
    runs['service'] = servicePass((p) => p.uploadSeconds + p.ingestSeconds);
    runs['zipUpload'] = servicePass((p) => p.zipUploadSeconds);
    runs['zipIngest'] = servicePass((p) => p.zipIngestSeconds);
    runs['zip'] = servicePass((p) => p.zipUploadSeconds + p.zipIngestSeconds);
    const med = (key: string): { filesPerS: number; mbPerS: number } | undefined => {
      const passes = runs[key] ?? [];
      if (passes.length === 0) return undefined;
      return { filesPerS: median(passes.map((p) => rate(p).filesPerS)), mbPerS: median(passes.map((p) => rate(p).mbPerS)) };
    };
    const read = med('read');
    const rows: string[][] = [];
    const line = (label: string, key: string, base?: { filesPerS: number }): void => {
      const m = med(key);
      if (!m) return;
      rows.push([label, fmtInt(m.filesPerS), m.mbPerS.toFixed(0), base ? fmtRatio(m.filesPerS / base.filesPerS) : '']);
    };
    line('plain read (readFileSync, 1 thread)', 'read');
    line(`ingest: hash+parse+store, fresh store (${threads} worker threads)`, 'ingest', read);
    line('ingest, store folders exist (steady state)', 'warm', read);
    line('ingest inline (main thread only)', 'inline', read);
    line('ingest durable (+ fdatasync per file)', 'durable', read);
    line('plain read, cold (pages evicted)', 'readCold');
    line('ingest, cold, fresh store', 'ingestCold', med('readCold'));
    line('ingest, cold, store folders exist', 'warmCold', med('readCold'));
    line(`service: upload (HTTP, ${FILES_PER_UPLOAD} files a request)`, 'serviceUpload', read);
    line('service: ingest job (header parse, verdict)', 'serviceIngest', read);
    line('service: upload + ingest job', 'service', read);
    line('service, one zip of them (a CD): upload', 'zipUpload', read);
    line('service, one zip: ingest job (unzip, place, parse)', 'zipIngest', read);
    line('service, one zip: upload + ingest job', 'zip', read);

    console.log(`DICOM header ingest: ${files.length} files, ${(totalBytes / MB).toFixed(1)} MB, ${PASSES} passes (medians); ${outcome.ok} parsed, ${outcome.failed} unparsed (malformed, kept)`);
    console.log(table(['phase', 'files/s', 'MB/s', 'vs read'], rows));

    const ingestRate = med('ingest');
    const figures: BenchFigure[] = [];
    if (read && ingestRate) {
      const ratio = ingestRate.filesPerS / read.filesPerS;
      figures.push({ figure: 'ingest vs plain read (hot)', unit: '×', measured: ratio, target: `≥ ${TARGET_RATIO}`, pass: ratio >= TARGET_RATIO, baseline: read.filesPerS, baselineName: 'readFileSync files/s', ratio });
      figures.push({ figure: 'ingest throughput (hot)', unit: 'files/s', measured: ingestRate.filesPerS });
      figures.push({ figure: 'ingest throughput (hot)', unit: 'MB/s', measured: ingestRate.mbPerS });
    }
    const cold = med('ingestCold');
    const readCold = med('readCold');
    if (cold && readCold) {
      const ratio = cold.filesPerS / readCold.filesPerS;
      figures.push({ figure: 'ingest vs plain read (cold)', unit: '×', measured: ratio, target: `≥ ${TARGET_RATIO}`, pass: ratio >= TARGET_RATIO, baseline: readCold.filesPerS, baselineName: 'cold readFileSync files/s', ratio });
    }
    const viaService = med('service');
    if (read && viaService) {
      figures.push({ figure: "service's own path: upload + ingest job (hot)", unit: 'files/s', measured: viaService.filesPerS, baseline: read.filesPerS, baselineName: 'readFileSync files/s', ratio: viaService.filesPerS / read.filesPerS });
    }
    const viaZip = med('zip');
    if (read && viaZip) {
      figures.push({ figure: "service's own path: one zip (a CD), upload + ingest job (hot)", unit: 'files/s', measured: viaZip.filesPerS, baseline: read.filesPerS, baselineName: 'readFileSync files/s', ratio: viaZip.filesPerS / read.filesPerS });
    }
    const durable = med('durable');
    if (durable) figures.push({ figure: 'durable ingest (fdatasync per file)', unit: 'files/s', measured: durable.filesPerS });
    const pass = figures.filter((f) => f.pass !== undefined).every((f) => f.pass);
    const written = writeResult({
      bench: 'dicom',
      startedAt,
      durationMs: performance.now() - t0,
      machine: machineInfo(),
      pass,
      figures,
      details: { files: files.length, totalBytes, passes: PASSES, threads, outcome, runs, evictionWorked: canEvict === true, serviceStates: service[0]?.states },
    });
    console.log(`${pass ? 'PASS' : 'FAIL'} (target: ingest ≥ ${TARGET_RATIO}× plain read) → ${written.latest}`);
  } finally {
    await pool.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
