/**
 * The orphan sweep of the blob store: removes blob files no `blobs` row names (PHI on disk that the
 * system of record knows nothing of), once they are older than a grace period
 * (`BLOB_ORPHAN_GRACE_HOURS`), and temp files (`tmp/*.part`) left by killed writers.
 *
 * How orphans arise: every writer places a blob's file before the row that records it commits — the
 * attachment fetch (rename, then `recordBlob` on its own), the inline batch (files, then one
 * statement), a zip's files (hard links inside the ingest transaction), an upload (rows first, files
 * moved in last, then the commit). A crash between the two, a rolled-back transaction or a row never
 * written (the database down, a job that failed for good) leaves the file alone. Only an upload cleans
 * up after itself (`discardUnrecordedBlobs`), and only while its process lives and can read the rows.
 *
 * What is removed: a regular file `aa/bb/<sha256>` whose name no `blobs` row holds and whose inode
 * was last changed — status (ctime: set by the `link` or `rename` that placed it) or content (mtime) —
 * before `now - grace`. ctime, not only mtime: a file linked into the store (`storeFileAsBlob`) keeps
 * its source's mtime, which may be old at the very moment it is placed; ctime cannot be set back.
 * Folders are never removed (writers cache the fan-out folders they know exist), nor anything whose
 * name is not a blob's.
 *
 * Why it is safe against writers placing or recording the same content meanwhile
 * ({@link removeOrphan}), given that every writer places an inode of its own — a rename of its temp
 * file, a link of its source, and for content already there a rename over it (`storeFileAsBlob`;
 * `BlobWriter.commit` and `putBuffer` always rename) — so none ever relies on a file it found in place:
 * 1. the candidate is claimed by inserting its `blobs` row in a transaction that is always rolled
 *    back. A writer's row inserted but not yet committed makes the claim wait for its outcome (a
 *    unique-key insert waits on the uncommitted one), then fail if it committed: the file is kept.
 *    While the claim is held, a writer that records the content waits for the sweep to finish.
 * 2. the file is then moved out of the way (`rename`, atomic) into the temp folder, under a name of the
 *    sweep's own, and that moved file is checked to be the very inode judged old (inode number, size,
 *    mtime). A writer that placed its own inode in between (a fresh one) had it moved
 *    instead: it is linked back (`EEXIST`: another writer placed the same content again; fine) and the
 *    folder flushed. Only the inode judged old, now out of every writer's reach, is unlinked.
 * A sweep that dies between the move and its end leaves `tmp/<sha256>.<uuid>.orphan`: the next run
 * settles it first (linked back when a row names it or it was written within the grace, else removed),
 * under the same claim, so never while a live sweep (another process) still works on it.
 *
 * The grace period covers what the claim cannot see: a writer whose file is placed and whose row is not
 * yet inserted (milliseconds: the row follows the placement in the same job, or precedes it).
 *
 * Lazy and batched: the folders are walked with `opendir`, one blob at a time, and the rows of the old
 * files are read in batches (`= ANY($1)`); each orphan is claimed in a transaction of its own (a claim
 * held while waiting for another could deadlock with a writer recording several blobs). Idempotent;
 * several sweeps at once (several workers) serialise on the claims. Counts and bytes only are
 * reported, never a name or a digest.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { STALE_SCRATCH_AFTER_MS, type Config } from '../config';
import { isSystemError } from '../util/system-error';
import type { Database } from '../db/database';
import { errorFields, logger } from '../log';
import type { BlobStore } from './blob-store';

/** How often a worker sweeps (the first time when it starts): orphans are rare, and every file is looked at. */
export const ORPHAN_SWEEP_EVERY_MS = 24 * 60 * 60 * 1000;

/** Files whose rows are read in one query. */
const DEFAULT_BATCH = 1000;
/** How long a claim waits for a writer's uncommitted row before the file is left for the next run. */
const CLAIM_LOCK_TIMEOUT_MS = 5000;
const SHA256 = /^[0-9a-f]{64}$/;
const FAN_OUT = /^[0-9a-f]{2}$/;
/** `<sha256>.<uuid>.orphan`: a file a sweep moved out of the way (temp folder). */
const SET_ASIDE = /^([0-9a-f]{64})\.[0-9a-f-]{36}\.orphan$/;

/** How long a file is kept before a sweep may remove it (`BLOB_ORPHAN_GRACE_HOURS`), in ms. */
export const orphanGraceMs = (config: Pick<Config, 'blobOrphanGraceHours'>): number => config.blobOrphanGraceHours * 3_600_000;

export interface OrphanSweepOptions {
  /** Files last changed within this long before `now` are kept (`BLOB_ORPHAN_GRACE_HOURS`). */
  readonly graceMs: number;
  /** The sweep's clock (default: now). */
  readonly now?: Date;
  /** Files whose rows are read in one query (default 1,000). */
  readonly batchSize?: number;
  /** Stops the walk (a worker closing): what was looked at is settled, the rest waits for the next run. */
  readonly signal?: AbortSignal;
  /** Counts what would be removed, removes nothing. */
  readonly dryRun?: boolean;
}

/** What one run found and did: counts and bytes only. */
export interface OrphanSweepResult {
  /** Blob files looked at. */
  readonly scanned: number;
  /** Of those, changed within the grace: kept whether recorded or not. */
  readonly young: number;
  /** Of those, older and named by a `blobs` row: kept. */
  readonly recorded: number;
  /** Orphans removed (with `dryRun`: that would be). */
  readonly removed: number;
  readonly removedBytes: number;
  /**
   * Orphans kept after all: recorded, or placed again by a writer, between the listing and the
   * removal, or held by a writer's uncommitted row past the claim's wait (the next run looks again).
   */
  readonly raced: number;
  /** Orphans that could not be removed (a file system error; the database's fails the run): kept, the next run tries again. */
  readonly failed: number;
  /** Stale temp files removed (with `dryRun`: that would be). */
  readonly tempFiles: number;
  readonly tempBytes: number;
  /** Files an interrupted sweep had set aside, settled: linked back or removed. */
  readonly recovered: number;
  /** False when the run was stopped (`signal`) before it looked at every file. */
  readonly complete: boolean;
}

/** A file found old, as it was when looked at. */
interface Candidate {
  readonly sha256: string;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

type Outcome = 'removed' | 'raced' | 'gone';

/** When a file was last placed or written: the later of its status-change and modification times. */
function changedAtMs(stat: fs.Stats): number {
  return Math.max(stat.mtimeMs, stat.ctimeMs);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Ends a claim's transaction by rolling it back, carrying what was done under it. */
class ClaimReleased<T> extends Error {
  constructor(readonly value: T) {
    super('claim released');
  }
}

/**
 * Runs `work` while `sha256` is claimed: its `blobs` row inserted, uncommitted, in a transaction that
 * is rolled back after `work`. Waits (up to {@link CLAIM_LOCK_TIMEOUT_MS}) for a writer's uncommitted
 * row of the same content.
 * @returns what `work` answered; `'recorded'` when a row is committed (nothing run); `'busy'` when a
 *   writer's row stayed uncommitted past the wait (nothing run)
 */
async function withClaim<T>(db: Database, sha256: string, work: () => Promise<T>): Promise<T | 'recorded' | 'busy'> {
  try {
    return await db.transaction(async (tx) => {
      await tx.query(`SET LOCAL lock_timeout = ${CLAIM_LOCK_TIMEOUT_MS}`);
      const claimed = await tx.query('INSERT INTO blobs (sha256, size) VALUES ($1, 0) ON CONFLICT (sha256) DO NOTHING RETURNING sha256', [sha256]);
      if (claimed.rows.length === 0) return 'recorded' as const;
      throw new ClaimReleased(await work());
    });
  } catch (err) {
    if (err instanceof ClaimReleased) return err.value as T;
    // lock_not_available: the writer's transaction is still open.
    if (codeOf(err) === '55P03') return 'busy';
    throw err;
  }
}

/** A new name in the temp folder for a file the sweep moves out of the way. */
function setAsidePath(store: BlobStore, sha256: string): string {
  return path.join(store.tempDir, `${sha256}.${randomUUID()}.orphan`);
}

/**
 * Puts a file set aside back in place, durably (a writer placed the same content meanwhile: that one
 * is kept). Putting back is always safe: it only adds a name, for the content the name says.
 * @returns false when the file set aside is gone (another sweep settled it)
 */
async function putBack(store: BlobStore, aside: string, sha256: string): Promise<boolean> {
  try {
    await fs.promises.link(aside, store.pathOf(sha256));
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false;
    if (codeOf(err) !== 'EEXIST') throw err;
  }
  await store.flushPlaced(sha256);
  await fs.promises.rm(aside, { force: true });
  return true;
}

/**
 * Removes one orphan found old, unless it was recorded, replaced or changed since (see the module's
 * documentation): claimed; moved aside; the inode moved checked to be the one judged old, else put back.
 */
async function removeOrphan(db: Database, store: BlobStore, found: Candidate): Promise<Outcome> {
  const outcome = await withClaim(db, found.sha256, async (): Promise<Outcome> => {
    const aside = setAsidePath(store, found.sha256);
    try {
      await fs.promises.rename(store.pathOf(found.sha256), aside);
    } catch (err) {
      // Removed meanwhile (another sweep, the upload that placed it).
      if (codeOf(err) === 'ENOENT') return 'gone';
      throw err;
    }
    try {
      const moved = await fs.promises.lstat(aside);
      // The inode number alone would do: a writer's inode exists before its rename frees the one it
      // replaces, so it never has that one's number; a third file taking the number after would have
      // to be placed within the same instant, and with the same mtime.
      const same = moved.isFile() && moved.ino === found.ino && moved.size === found.size && moved.mtimeMs === found.mtimeMs;
      if (same) {
        await fs.promises.unlink(aside);
        return 'removed';
      }
    } catch (err) {
      await putBack(store, aside, found.sha256);
      throw err;
    }
    // A writer placed its own file since the look: that one was moved, and goes back.
    await putBack(store, aside, found.sha256);
    return 'raced';
  });
  return outcome === 'recorded' || outcome === 'busy' ? 'raced' : outcome;
}

/**
 * Settles the files a sweep set aside and did not finish with (its process died): put back when a row
 * names the content or the file was written within the grace, removed otherwise. Under the claim, so
 * never a file a live sweep is still working on.
 * @returns how many were settled
 */
async function settleSetAside(db: Database, store: BlobStore, cutoffMs: number, dryRun: boolean): Promise<number> {
  let settled = 0;
  for (const name of await fs.promises.readdir(store.tempDir)) {
    const sha256 = SET_ASIDE.exec(name)?.[1];
    if (sha256 === undefined) continue;
    const aside = path.join(store.tempDir, name);
    if (dryRun) {
      settled += 1;
      continue;
    }
    const outcome = await withClaim(db, sha256, async () => {
      const stat = await fs.promises.lstat(aside).catch(() => undefined);
      if (stat === undefined) return 'gone' as const;
      // The mtime only: the move aside set its ctime.
      if (stat.mtimeMs < cutoffMs) await fs.promises.unlink(aside);
      else if (!(await putBack(store, aside, sha256))) return 'gone' as const;
      return 'settled' as const;
    });
    if (outcome === 'settled' || (outcome === 'recorded' && (await putBack(store, aside, sha256)))) settled += 1;
  }
  return settled;
}

/** Sub-folders of `dir` named like fan-out folders (`aa`, `bb`); none when `dir` is gone. */
async function fanOutFolders(dir: string): Promise<string[]> {
  try {
    return (await fs.promises.readdir(dir)).filter((name) => FAN_OUT.test(name)).sort();
  } catch (err) {
    if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** The blob files of the store, one folder read lazily at a time (`opendir`). */
async function* blobFiles(store: BlobStore): AsyncGenerator<{ readonly sha256: string; readonly file: string }> {
  for (const aa of await fanOutFolders(store.root)) {
    for (const bb of await fanOutFolders(path.join(store.root, aa))) {
      const dir = path.join(store.root, aa, bb);
      let handle: fs.Dir;
      try {
        handle = await fs.promises.opendir(dir);
      } catch (err) {
        if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') continue;
        throw err;
      }
      // Closed by the loop, at its end or when it is left.
      for await (const entry of handle) {
        if (SHA256.test(entry.name) && entry.name.startsWith(aa + bb)) yield { sha256: entry.name, file: path.join(dir, entry.name) };
      }
    }
  }
}

/**
 * One run of the sweep over `store` (see the module's documentation): the files an interrupted run set
 * aside, the stale temp files, then every blob file, oldest-unrecorded removed.
 */
export async function sweepOrphanBlobs(db: Database, store: BlobStore, options: OrphanSweepOptions): Promise<OrphanSweepResult> {
  const nowMs = (options.now ?? new Date()).getTime();
  const cutoffMs = nowMs - options.graceMs;
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
  const dryRun = options.dryRun ?? false;
  const counts = { scanned: 0, young: 0, recorded: 0, removed: 0, removedBytes: 0, raced: 0, failed: 0, tempFiles: 0, tempBytes: 0, recovered: 0 };

  counts.recovered = await settleSetAside(db, store, cutoffMs, dryRun);

  // Temp files: once unwritten for the longer of the grace and STALE_SCRATCH_AFTER_MS, as at start (an
  // upload's finished part waits for the rest of its request; the API's timeout may differ from ours).
  const temp = await store.removeStaleTempFiles(new Date(nowMs - Math.max(options.graceMs, STALE_SCRATCH_AFTER_MS)), { dryRun });
  counts.tempFiles = temp.files;
  counts.tempBytes = temp.bytes;

  const settle = async (batch: readonly Candidate[]): Promise<void> => {
    if (batch.length === 0) return;
    const { rows } = await db.query<{ sha256: string }>('SELECT sha256 FROM blobs WHERE sha256 = ANY($1::text[])', [batch.map((c) => c.sha256)]);
    const recorded = new Set(rows.map((r) => r.sha256));
    for (const found of batch) {
      if (recorded.has(found.sha256)) {
        counts.recorded += 1;
        continue;
      }
      let outcome: Outcome | 'failed';
      try {
        outcome = dryRun ? 'removed' : await removeOrphan(db, store, found);
      } catch (err) {
        // A file system error is this file's (the next run tries again); the database's, the run's.
        if (!isSystemError(err)) throw err;
        outcome = 'failed';
      }
      if (outcome === 'failed') counts.failed += 1;
      else if (outcome === 'removed') {
        counts.removed += 1;
        counts.removedBytes += found.size;
      } else if (outcome === 'raced') counts.raced += 1;
    }
  };

  let batch: Candidate[] = [];
  let complete = true;
  for await (const { sha256, file } of blobFiles(store)) {
    if (options.signal?.aborted) {
      complete = false;
      break;
    }
    const stat = await fs.promises.lstat(file).catch(() => undefined);
    if (stat === undefined || !stat.isFile()) continue;
    counts.scanned += 1;
    if (changedAtMs(stat) >= cutoffMs) {
      counts.young += 1;
      continue;
    }
    batch.push({ sha256, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs });
    if (batch.length >= batchSize) {
      await settle(batch);
      batch = [];
    }
  }
  await settle(batch);
  return { ...counts, complete };
}

/**
 * Runs the sweep at most once per `everyMs` (default {@link ORPHAN_SWEEP_EVERY_MS}) in this process,
 * from a periodic job (the `sla-sweep` worker's): the first call sweeps. A failed sweep is logged and
 * tried again at the next period, without failing the job.
 */
export class BlobOrphanSweeper {
  private lastRunAt: number | undefined;
  private running = false;
  private readonly everyMs: number;
  private readonly now: () => number;

  /**
   * @param options - `graceMs` (`BLOB_ORPHAN_GRACE_HOURS`); `everyMs` between runs; `now` the clock (tests).
   */
  constructor(
    private readonly db: Database,
    private readonly store: BlobStore,
    private readonly options: { readonly graceMs: number; readonly everyMs?: number; readonly now?: () => number },
  ) {
    this.everyMs = options.everyMs ?? ORPHAN_SWEEP_EVERY_MS;
    this.now = options.now ?? Date.now;
  }

  /** @returns what was swept, or undefined when it was not due or failed */
  async sweepIfDue(signal?: AbortSignal): Promise<OrphanSweepResult | undefined> {
    const now = this.now();
    if (this.running || (this.lastRunAt !== undefined && now - this.lastRunAt < this.everyMs)) return undefined;
    this.lastRunAt = now;
    this.running = true;
    try {
      const result = await sweepOrphanBlobs(this.db, this.store, { graceMs: this.options.graceMs, now: new Date(now), ...(signal ? { signal } : {}) });
      const { complete, ...numbers } = result;
      logger.info('blob orphans swept', { event: 'blobs.orphan_sweep', state: complete ? 'complete' : 'stopped', counts: numbers });
      return result;
    } catch (err) {
      logger.warn('blob orphan sweep failed', { event: 'blobs.orphan_sweep_failed', ...errorFields(err) });
      return undefined;
    } finally {
      this.running = false;
    }
  }
}
