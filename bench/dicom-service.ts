/**
 * `bench:dicom`'s service rows: the same DICOM files through the path the service itself takes with a
 * family's files, end to end over HTTP. `POST /api/cases/:id/uploads` (multipart, each file streamed
 * into the blob store with its SHA-256, the upload recorded in one transaction: 202), then the
 * `ingest-upload` job (each file's header parsed in the DICOM worker pool and its verdict recorded),
 * until no file of the upload is left `received`. What follows — the identity review of the studies and
 * the case assembled again — is waited for untimed, before the next upload.
 *
 * The bench's other rows time `ingestDicomFiles` (`src/imaging/dicom-ingest.ts`): hash, parse and
 * store, sixteen files at a time, a library path the service does not take. These rows say what a
 * family's CD costs the service, beside the same plain read.
 *
 * Then the same files as one zip, as a CD export is sent: the job unzips it, places the files in the
 * blob store and reads them (until none of its extracted files is left `received`).
 *
 * An upload takes at most 200 files (`MAX_FILES_PER_UPLOAD`), so the files go in uploads of
 * {@link FILES_PER_UPLOAD}, one after another, each into a new case. Each pass sends new content (its
 * number in the DICOM preamble, free for any use: PS3.10 §7.1), so no blob is already stored. The ingest is seen by polling the
 * upload every {@link POLL_MS} ms (as a client does): each upload's time is late by up to that much.
 * @packageDocumentation
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { apiClient, waitFor, type ApiClient } from '../scripts/demo/api-client';
import { MAX_FILES_PER_UPLOAD } from '../src/uploads/upload-service';
import { buildZip } from '../test/uploads/zip-writer';
import { BENCH_INTAKE } from './assemble-seed';
import { startBenchService } from './bench-service';

/** Files per upload: the corpus's 340 in two. */
export const FILES_PER_UPLOAD = Math.min(170, MAX_FILES_PER_UPLOAD);
const POLL_MS = 20;
/** The longest an upload's ingest is waited for. */
const WAIT_MS = 120_000;
/** The warm-up's pass number (its content differs from every timed pass's). */
const WARM_UP_PASS = 255;

/** A file as the bench made it: where it is, and the name it is uploaded under. */
export interface BenchFile {
  readonly path: string;
  readonly name: string;
}

/** One pass over every file: wall time of the uploads (until each 202) and of their ingest jobs (202 until no file is `received`). */
export interface ServicePass {
  readonly files: number;
  readonly bytes: number;
  readonly uploadSeconds: number;
  readonly ingestSeconds: number;
  /** The same files as one zip (deflated): its upload, and its ingest job until every extracted file is read. */
  readonly zipUploadSeconds: number;
  readonly zipIngestSeconds: number;
  /** Files per state after the ingest (`flagged`, `unparsed`, `parsed`…). */
  readonly states: Readonly<Record<string, number>>;
}

interface UploadView {
  readonly uploadId: string;
  readonly state: string;
  readonly files: readonly { readonly state: string }[];
}

/** The file's bytes made unique to `pass`: its number in the preamble's second word, or a byte appended to a file without one. */
function passBytes(file: BenchFile, pass: number): Buffer {
  const bytes = fs.readFileSync(file.path);
  if (bytes.length >= 132 && bytes.toString('latin1', 128, 132) === 'DICM') {
    bytes.writeUInt32LE(pass + 1, 4);
    return bytes;
  }
  return Buffer.concat([bytes, Buffer.from([pass & 0xff])]);
}

/** The pass numbers of the zip passes start here (their content differs from the single-file passes'). */
const ZIP_PASS_BASE = 128;

/** Uploads `chunk` as files, or as one zip of them; times the upload and the ingest job (see the module comment). */
async function uploadAndIngest(api: ApiClient, token: string, chunk: readonly BenchFile[], pass: number, asZip = false): Promise<{ uploadMs: number; ingestMs: number; states: string[] }> {
  const opened = await api.json<{ id: string }>('POST', '/api/cases', token, BENCH_INTAKE);
  const form = new FormData();
  if (asZip) form.append('file', new Blob([buildZip(chunk.map((f) => ({ name: `DICOM/${f.name}`, data: passBytes(f, pass) })))]), `cd-${pass}.zip`);
  else for (const f of chunk) form.append('file', new Blob([passBytes(f, pass)]), f.name);
  const expected = asZip ? chunk.length + 1 : chunk.length;
  const t0 = performance.now();
  const accepted = await api.multipart<{ uploadId: string }>(`/api/cases/${opened.id}/uploads`, token, form);
  const t1 = performance.now();
  const uploadOf = async (): Promise<UploadView> => {
    const { items } = await api.json<{ items: UploadView[] }>('GET', `/api/cases/${opened.id}/uploads`, token);
    const upload = items.find((u) => u.uploadId === accepted.uploadId);
    if (!upload) throw new Error(`upload ${accepted.uploadId} not listed`);
    return upload;
  };
  // A zip's files are listed once it is unzipped: until then the upload lists the zip alone.
  await waitFor('the upload to be read', uploadOf, (u) => u.files.length >= expected && u.files.every((f) => f.state !== 'received'), WAIT_MS, POLL_MS);
  const ingestMs = performance.now() - t1;
  // Untimed: the identity review (which may flag what was just read) and the assembly, so that the
  // next upload does not overlap them and the states are the final ones.
  const upload = await waitFor('the upload to be ingested', uploadOf, (u) => u.state === 'ingested' || u.state === 'failed', WAIT_MS, POLL_MS);
  if (upload.files.length !== expected) throw new Error(`upload lists ${upload.files.length} files, expected ${expected}`);
  return { uploadMs: t1 - t0, ingestMs, states: upload.files.map((f) => f.state) };
}

/**
 * Starts the real service (fresh database, own queue prefix), warms it with one upload, then runs
 * `passes` passes over `files`; the service is stopped after.
 */
export async function servicePasses(files: readonly BenchFile[], passes: number): Promise<ServicePass[]> {
  const svc = await startBenchService('dicom');
  try {
    const api = apiClient(svc.url);
    const token = await svc.token('case_manager', 'bench-case-manager');
    const chunks: BenchFile[][] = [];
    for (let i = 0; i < files.length; i += FILES_PER_UPLOAD) chunks.push(files.slice(i, i + FILES_PER_UPLOAD));
    await uploadAndIngest(api, token, chunks[0] ?? [], WARM_UP_PASS);
    const bytes = files.reduce((n, f) => n + fs.statSync(f.path).size, 0);
    const out: ServicePass[] = [];
    for (let p = 0; p < passes; p++) {
      let uploadMs = 0;
      let ingestMs = 0;
      const states: Record<string, number> = {};
      for (const chunk of chunks) {
        const r = await uploadAndIngest(api, token, chunk, p);
        uploadMs += r.uploadMs;
        ingestMs += r.ingestMs;
        for (const s of r.states) states[s] = (states[s] ?? 0) + 1;
      }
      const zip = await uploadAndIngest(api, token, files, ZIP_PASS_BASE + p, true);
      out.push({ files: files.length, bytes, uploadSeconds: uploadMs / 1000, ingestSeconds: ingestMs / 1000, zipUploadSeconds: zip.uploadMs / 1000, zipIngestSeconds: zip.ingestMs / 1000, states });
    }
    return out;
  } finally {
    await svc.stop();
  }
}
