import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback, Writable } from 'node:stream';
import type { Queryable } from '../db/database';

/**
 * Makes a directory's entries durable: a name placed in it by `rename` or `link`, or a directory
 * created in it. POSIX leaves that to an fsync of the directory itself (the file's own fsync covers
 * its bytes, not the name that points at them): without it a power cut after the database commit
 * that records a blob could leave the blob's row and no file.
 * @see https://pubs.opengroup.org/onlinepubs/9799919799/functions/fsync.html
 * @see https://man7.org/linux/man-pages/man2/fsync.2.html (NOTES: "an explicit fsync() on a file descriptor for the directory is also needed")
 */
async function flushDirectory(dir: string): Promise<void> {
  await flushPath(dir, 'all');
}

/** Flushes a file's data to disk (`fdatasync`), so a rename or link of it never outlives its bytes. */
export async function flushFile(filePath: string): Promise<void> {
  await flushPath(filePath, 'data');
}

async function flushPath(target: string, what: 'data' | 'all'): Promise<void> {
  const handle = await fs.promises.open(target, 'r');
  try {
    await (what === 'data' ? handle.datasync() : handle.sync());
  } finally {
    await handle.close();
  }
}

/** The blob store's folder under `DATA_DIR`. */
export function blobStoreRoot(dataDir: string): string {
  return path.join(dataDir, 'blobs');
}

/**
 * Content-addressed blob store under `DATA_DIR/blobs/<aa>/<bb>/<sha256>`. Bytes are streamed to a
 * temporary file while hashing (never buffered whole), then renamed into place, so a crash leaves
 * either nothing or a complete blob; storing the same bytes twice is a no-op. A blob is durable
 * when its placing call returns: its bytes flushed before the rename or link, and the folder's new
 * name flushed after it ({@link flushDirectory}; the fan-out folders' own names when created).
 *
 * Every placement puts an inode of the placing writer's own, held under a name of its own until then
 * (its temp file renamed, its source linked, and for content already stored its inode renamed over
 * the one there: `storeFileAsBlob`): no writer relies on a file it merely found in place, which may be
 * an orphan the orphan sweep is removing (`orphan-sweep.ts`, which counts on this). Folders are never
 * removed ({@link ensureDir} remembers them).
 */
export class BlobStore {
  /** Fan-out folders known to exist: a `mkdir` per blob costs more than the write of a small one. */
  private readonly knownDirs = new Set<string>();

  /** @param root - The store's folder (`DATA_DIR/blobs`: {@link blobStoreRoot}); its temp folder `tmp` is created. */
  constructor(readonly root: string) {
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  }

  /** Where writers spool (`tmp/*.part`) and the orphan sweep sets files aside (`orphan-sweep.ts`): same file system as the blobs. */
  get tempDir(): string {
    return path.join(this.root, 'tmp');
  }

  /**
   * Makes sure the folder a blob goes into exists (checked once per process). Folders it creates
   * are made durable in their parents, from the store's root down.
   */
  async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const first = await fs.promises.mkdir(dir, { recursive: true });
    if (first !== undefined) {
      for (let created = dir; ; created = path.dirname(created)) {
        await flushDirectory(path.dirname(created));
        if (created === first || path.dirname(created) === created) break;
      }
    }
    this.knownDirs.add(dir);
  }

  /** Makes the name of a blob just placed durable (see {@link flushDirectory}). */
  async flushPlaced(sha256: string): Promise<void> {
    await flushDirectory(path.dirname(this.pathOf(sha256)));
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('not a sha256 hex digest');
    return path.join(this.root, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  /** A writable that hashes and spools to a temp file; `commit()` moves it into place. */
  createWriter(): BlobWriter {
    return new BlobWriter(this);
  }

  /**
   * Stores bytes already in memory (inline attachments): hashed here, written to a temp file with
   * its data flushed (`flush`: fsync), then renamed into place. No stream machinery: a page of
   * documents can carry hundreds of small inline attachments.
   */
  async putBuffer(data: Buffer): Promise<{ sha256: string; size: number }> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const target = this.pathOf(sha256);
    const temp = this.tempPath();
    try {
      await fs.promises.writeFile(temp, data, { mode: 0o600, flush: true });
      await this.ensureDir(path.dirname(target));
      await fs.promises.rename(temp, target);
      await this.flushPlaced(sha256);
    } catch (err) {
      await fs.promises.rm(temp, { force: true });
      throw err;
    }
    return { sha256, size: data.length };
  }

  /**
   * The stored bytes, checked against their key: a blob whose bytes no longer hash to it (a flipped
   * bit on disk, a file replaced) throws {@link BlobIntegrityError} instead of answering them.
   */
  async read(sha256: string): Promise<Buffer> {
    const bytes = await fs.promises.readFile(this.pathOf(sha256));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) throw new BlobIntegrityError(sha256, actual);
    return bytes;
  }

  exists(sha256: string): boolean {
    return fs.existsSync(this.pathOf(sha256));
  }

  tempPath(): string {
    return path.join(this.tempDir, `${randomUUID()}.part`);
  }

  /**
   * Removes temp files (`tmp/*.part`) last written before `writtenBefore`: those of writers that
   * died with their process (killed, out of memory) mid-upload or mid-download, which only the
   * writer itself would otherwise remove. A live writer's file is written to as bytes arrive, and a
   * finished one waits at most for the rest of its request: `writtenBefore` must lie further back
   * than either can last, so a file still in use is never removed (by this process or another on
   * the same data folder).
   * @param options - `dryRun`: counts them, removes nothing.
   * @returns how many were removed (with `dryRun`: would be), and their bytes
   */
  async removeStaleTempFiles(writtenBefore: Date, options: { readonly dryRun?: boolean } = {}): Promise<{ files: number; bytes: number }> {
    const removed = { files: 0, bytes: 0 };
    for await (const { file, size } of this.staleTempFiles(writtenBefore)) {
      if (options.dryRun !== true) await fs.promises.rm(file, { force: true });
      removed.files += 1;
      removed.bytes += size;
    }
    return removed;
  }

  /** The temp files (`tmp/*.part`) last written before `writtenBefore`, and their sizes: see {@link removeStaleTempFiles}. */
  private async *staleTempFiles(writtenBefore: Date): AsyncGenerator<{ readonly file: string; readonly size: number }> {
    const dir = this.tempDir;
    for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.part')) continue;
      const file = path.join(dir, entry.name);
      const stat = await fs.promises.stat(file).catch(() => undefined);
      if (stat === undefined || stat.mtimeMs >= writtenBefore.getTime()) continue;
      yield { file, size: stat.size };
    }
  }
}

/** A streaming writer into the blob store. */
export class BlobWriter extends Writable {
  private readonly hash = createHash('sha256');
  private readonly sha1 = createHash('sha1');
  private readonly temp: string;
  private fd = -1;
  private size = 0;
  private aborted = false;
  private digests: { readonly sha256: string; readonly sha1Base64: string } | undefined;

  constructor(private readonly store: BlobStore) {
    super();
    this.temp = store.tempPath();
  }

  /** Opens the temp file off the event loop, before the first write. */
  override _construct(callback: (error?: Error | null) => void): void {
    fs.open(this.temp, 'w', 0o600, (err, fd) => {
      this.fd = err ? -1 : fd;
      // Aborted while opening: leave no temp file behind.
      if (this.aborted && !err) this.abort();
      callback(err);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.hash.update(chunk);
    this.sha1.update(chunk);
    this.size += chunk.length;
    fs.write(this.fd, chunk, (err) => callback(err));
  }

  override _final(callback: (error?: Error | null) => void): void {
    fs.fsync(this.fd, (err) => callback(err));
  }

  /** The digests of what was written (call once the writer has finished): known before {@link commit}. */
  digest(): { readonly sha256: string; readonly sha1Base64: string } {
    this.digests ??= { sha256: this.hash.digest('hex'), sha1Base64: this.sha1.digest('base64') };
    return this.digests;
  }

  /**
   * Moves the finished temp file into place; returns its digest and size, and what was placed
   * ({@link PlacedBlob}: for {@link discardUnrecordedBlobs}). When that fails (the disk full or
   * failing) the temp file is removed and the error thrown: a blob is there whole or not at all.
   */
  async commit(): Promise<{ sha256: string; sha1Base64: string; size: number; placed: PlacedBlob }> {
    try {
      const fd = this.fd;
      this.fd = -1;
      const { ino } = await fs.promises.stat(this.temp);
      await new Promise<void>((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
      const { sha256, sha1Base64 } = this.digest();
      const target = this.store.pathOf(sha256);
      await this.store.ensureDir(path.dirname(target));
      const created = await fs.promises.access(target).then(
        () => false,
        () => true,
      );
      await fs.promises.rename(this.temp, target);
      await this.store.flushPlaced(sha256);
      return { sha256, sha1Base64, size: this.size, placed: { sha256, created, ino } };
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Removes the temp file after a failed download. */
  abort(): void {
    this.aborted = true;
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
    fs.rmSync(this.temp, { force: true });
  }
}

/** A file a writer moved into the store (`BlobWriter.commit`). */
export interface PlacedBlob {
  readonly sha256: string;
  /** Whether the store did not hold the content before: a file that was there already is never this writer's to remove. */
  readonly created: boolean;
  /** The file (inode) moved into place: another writer that stored the same bytes since has replaced it with its own. */
  readonly ino: number;
}

/**
 * Removes files moved into the store for rows that were then never recorded (the transaction that
 * was to write them failed after the files were placed), so that no file stays without a trace in
 * the database. Blobs are content-addressed and shared: a file is removed only when this writer put
 * it there (`created`), it is still that very file (same inode) and no `blobs` row names it (another
 * writer's, or this one's when a commit reported failed had in fact gone through). When the rows
 * cannot be read (the database is down), every file is kept: a blob in use is never removed on a guess.
 * @returns how many files were removed
 */
export async function discardUnrecordedBlobs(db: Queryable, store: BlobStore, placed: readonly PlacedBlob[]): Promise<number> {
  // The same bytes placed twice by one writer (a file sent twice in one upload): the second replaced the first.
  const ours = new Map<string, { created: boolean; inodes: Set<number> }>();
  for (const p of placed) {
    const entry = ours.get(p.sha256) ?? { created: false, inodes: new Set<number>() };
    entry.created ||= p.created;
    entry.inodes.add(p.ino);
    ours.set(p.sha256, entry);
  }
  const candidates = [...ours].filter(([, entry]) => entry.created);
  if (candidates.length === 0) return 0;
  const recorded = await db.query<{ sha256: string }>('SELECT sha256 FROM blobs WHERE sha256 = ANY($1::text[])', [candidates.map(([sha256]) => sha256)]);
  const inUse = new Set(recorded.rows.map((r) => r.sha256));
  let removed = 0;
  for (const [sha256, { inodes }] of candidates) {
    if (inUse.has(sha256)) continue;
    const file = store.pathOf(sha256);
    const current = await fs.promises.stat(file).catch(() => undefined);
    if (current === undefined || !inodes.has(current.ino)) continue;
    await fs.promises.rm(file, { force: true });
    removed += 1;
  }
  return removed;
}

/** Records a stored blob (idempotent). */
export async function recordBlob(db: Queryable, blob: { sha256: string; size: number; contentType?: string }): Promise<void> {
  await db.query(
    'INSERT INTO blobs (sha256, size, content_type) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING',
    [blob.sha256, blob.size, blob.contentType ?? null],
  );
}

/** Stored bytes that do not hash to their key (SHA-256): the blob is damaged. No content in the message. */
export class BlobIntegrityError extends Error {
  override readonly name = 'BlobIntegrityError';
  readonly code = 'EBLOBINTEGRITY';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`stored blob ${expected} is damaged: its bytes hash to ${actual}`);
  }
}

/**
 * A pass-through that hashes (SHA-256) what streams through it and fails with
 * {@link BlobIntegrityError} at the end when the bytes are not `sha256`'s. It holds back the latest
 * chunk until the next arrives or the end is checked, so a reader of a damaged blob never receives
 * every byte: piped into an HTTP response with a `Content-Length`, the response is cut short (the
 * client sees an incomplete body, never a complete wrong one under a strong ETag).
 */
export function verifyingStream(sha256: string): Transform {
  const hash = createHash('sha256');
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      hash.update(chunk);
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done: TransformCallback) {
      const actual = hash.digest('hex');
      if (actual !== sha256) {
        done(new BlobIntegrityError(sha256, actual));
        return;
      }
      done(null, held);
    },
  });
}
