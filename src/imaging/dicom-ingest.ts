/**
 * Header ingest of DICOM files already on local disk (a CD export just extracted by `extractZip`, or
 * single files spooled by the upload route): for each file, hash (SHA-256) + parse the header in a
 * worker thread, then store the file in the content-addressed blob store by hard link (no copy; a copy
 * only across file systems). A file that fails to parse, or stalls its worker, is still stored and
 * reported with the reason: nothing a family uploaded is dropped.
 *
 * Durability: with `durable` (the default) each file's data is flushed (`fdatasync`) before it is linked
 * into the store, so a crash can never leave a blob name over incomplete content, and the folder's new
 * name is flushed after (`BlobStore.flushPlaced`), so the blob outlives a crash once this returns. The flushes
 * of concurrent files overlap, which costs far less than one flush after another.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { flushFile, type BlobStore } from '../blobs/blob-store';
import type { DicomParseResult } from './dicom-header';
import type { DicomWorkerPool } from './dicom-worker-pool';

/** A file to ingest: where it is, and its name as uploaded (e.g. the zip entry name). */
export interface DicomFileToIngest {
  readonly path: string;
  readonly name: string;
}

/** The outcome for one file. `sha256` is absent only when the file could not be read at all. */
export interface IngestedDicomFile {
  readonly name: string;
  readonly path: string;
  readonly sha256?: string;
  readonly size?: number;
  /** Whether the blob was new, already stored, or could not be stored (`storeError`). */
  readonly stored: 'new' | 'existing' | 'failed';
  readonly storeError?: string;
  readonly result: DicomParseResult;
}

export interface IngestOptions {
  readonly pool: DicomWorkerPool;
  readonly store: BlobStore;
  /** Files in flight at once (default 2 × 4). */
  readonly concurrency?: number;
  /** Flush each file's data before linking it into the store, and its name after (default true). */
  readonly durable?: boolean;
}

/** Ingests files; results in input order. Never rejects for a bad file. */
export async function ingestDicomFiles(files: readonly DicomFileToIngest[], options: IngestOptions): Promise<IngestedDicomFile[]> {
  const results: IngestedDicomFile[] = new Array<IngestedDicomFile>(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const index = next++;
      const file = files[index];
      if (file) results[index] = await ingestOne(file, options);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, lane));
  return results;
}

async function ingestOne(file: DicomFileToIngest, options: IngestOptions): Promise<IngestedDicomFile> {
  const hashed = await options.pool.hashAndParse(file.path);
  let sha256: string;
  let size: number;
  let result: DicomParseResult;
  if ('error' in hashed) {
    result = { ok: false, code: hashed.code, reason: hashed.error };
    if (hashed.code === 'io') return { name: file.name, path: file.path, stored: 'failed', storeError: hashed.error, result };
    // The worker stalled or died on this file: hash it here (streaming) so it is still kept.
    try {
      ({ sha256, size } = await hashFile(file.path));
    } catch (err) {
      return { name: file.name, path: file.path, stored: 'failed', storeError: String(err), result };
    }
  } else {
    ({ sha256, size, result } = hashed);
  }
  try {
    const stored = await storeFileAsBlob(options.store, file.path, sha256, options.durable ?? true);
    return { name: file.name, path: file.path, sha256, size, stored, result };
  } catch (err) {
    return { name: file.name, path: file.path, sha256, size, stored: 'failed', storeError: (err as Error).message, result };
  }
}

/** SHA-256 and size of a file, streamed. */
export async function hashFile(filePath: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(filePath) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Puts a local file into the blob store under its (already computed) SHA-256: a hard link into
 * `<root>/aa/bb/<sha256>`, or a copy + rename across file systems. The source must not be modified
 * afterwards (it shares the stored inode). A failed copy (ENOSPC, EIO) leaves no temp file and is
 * thrown (the caller retries). With `durable`, the file's bytes are flushed before it is placed and
 * its name after; without, the caller does both (`flushFile`, `BlobStore.flushPlaced`) before it
 * records the blob.
 *
 * Content already stored (`'existing'`) is placed again all the same, this file's own inode renamed
 * over the one there (a hard link in the temp folder first, or a copy across file systems): the
 * caller is about to record a row for it, and the file it found there may be an orphan (no row) that
 * the orphan sweep (`blobs/orphan-sweep.ts`) is removing at this very moment. A file this call
 * places is one the sweep never removes: it holds it under a name of its own until the rename, and
 * once placed its status-change time (ctime, set by the link or rename) is fresh, and the sweep only
 * removes the very inode it found old.
 */
export async function storeFileAsBlob(store: BlobStore, filePath: string, sha256: string, durable = true): Promise<'new' | 'existing'> {
  const target = store.pathOf(sha256);
  // No existence check first: the link below answers EEXIST for content already stored.
  if (durable) await flushFile(filePath);
  await store.ensureDir(path.dirname(target));
  let alreadyStored: boolean;
  try {
    await fs.promises.link(filePath, target);
    if (durable) await store.flushPlaced(sha256);
    return 'new';
  } catch (err) {
    // Linux answers EEXIST before EXDEV: content already stored may still sit on another file system.
    if (errorCode(err) === 'EEXIST') alreadyStored = true;
    else if (CROSS_DEVICE.has(errorCode(err))) alreadyStored = false;
    else throw err;
  }
  const temp = store.tempPath();
  try {
    // Linked where the file system allows it (EEXIST said it might), else copied.
    await placeAtTemp(filePath, temp, alreadyStored);
    await fs.promises.rename(temp, target);
    if (durable) await store.flushPlaced(sha256);
  } finally {
    // A disk full or failing half-way: no partial copy stays in the store's temp folder. And a rename
    // onto the very inode already there (this file stored before) does nothing, leaving the temp name.
    await fs.promises.rm(temp, { force: true });
  }
  return alreadyStored ? 'existing' : 'new';
}

/**
 * The file's content at `temp`, in the blob store's temp folder: a hard link when `tryLink` and the
 * file system allows it, else a copy, flushed always (a new file, which a caller's flush of the
 * source does not cover).
 */
async function placeAtTemp(filePath: string, temp: string, tryLink: boolean): Promise<void> {
  if (tryLink) {
    try {
      await fs.promises.link(filePath, temp);
      return;
    } catch (err) {
      if (!CROSS_DEVICE.has(errorCode(err))) throw err;
    }
  }
  await fs.promises.copyFile(filePath, temp);
  await flushFile(temp);
}

const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? '';

/** The answers of `link` across file systems (or where hard links are not supported): copied instead. */
const CROSS_DEVICE: ReadonlySet<string> = new Set(['EXDEV', 'EPERM', 'ENOTSUP']);
