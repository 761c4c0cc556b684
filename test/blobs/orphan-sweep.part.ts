/**
 * The blob store's orphan sweep (`src/blobs/orphan-sweep.ts`): a blob file no `blobs` row names is
 * removed once older than the grace, stale temp files too; a recorded blob, a young one, and one a
 * writer records or places again while the sweep runs are kept. Real PostgreSQL, real files in a temp
 * data folder; races staged with real transactions (a writer's row held uncommitted) and, for a writer
 * placing the same content at the very moment the sweep moves it, node's own `rename` passed through
 * with the writer's placement run just before it.
 *
 * Ages: a blob's age counts from the later of its mtime and its ctime (the `link` or `rename` that
 * placed it sets the ctime, which no call can set back). Files made by a test are therefore all "just
 * placed": to make them old, the sweep's clock (`now`) is moved forward past the grace instead, and a
 * file that must stay young gets an mtime close to that clock (`fs.utimes`). Temp files age by mtime
 * alone, set with `fs.utimes`, the sweep at the real time. No sleeps.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlobStore, blobStoreRoot, recordBlob } from '../../src/blobs/blob-store';
import { BlobOrphanSweeper, sweepOrphanBlobs, type OrphanSweepResult } from '../../src/blobs/orphan-sweep';
import { STALE_SCRATCH_AFTER_MS } from '../../src/config';
import { loadDomainData } from '../../src/cases/domain-data';
import { storeFileAsBlob } from '../../src/imaging/dicom-ingest';
import { logger } from '../../src/log';
import { bullConnectionOptions } from '../../src/redis';
import { startSlaSweep } from '../../queues/sla-sweep';
import { parseArgs, sweepOnce } from '../../scripts/sweep-blobs';
import { CaptureTransport } from '../support/capture-log';
import { sessionWaitsFor, whileRowsHeld } from '../support/held-rows';
import { createTestDatabase, openBackendDatabase, type TestDatabase } from '../support/postgres';
import { TEST_REDIS_URL } from '../support/redis-url';
import { eventually } from '../support/service';
import { tempDir } from '../support/temp-dir';

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;
/** When the test file started: every file it makes is placed after this. */
const T0 = Date.now();
/** A sweep clock past the grace for every file placed by this test file (it runs in far less than an hour). */
const LATER = new Date(T0 + GRACE + HOUR);

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb.drop();
});

let dataDir: string;
let store: BlobStore;
beforeEach(() => {
  dataDir = tempDir('orphan-sweep');
  store = new BlobStore(blobStoreRoot(dataDir));
});

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A blob placed as the writers place them (temp file, rename, flushes); recorded when asked. */
async function blob(text: string, options: { recorded?: boolean; mtime?: Date } = {}): Promise<{ sha256: string; size: number; file: string }> {
  const placed = await store.putBuffer(Buffer.from(text));
  const file = store.pathOf(placed.sha256);
  if (options.mtime) fs.utimesSync(file, options.mtime, options.mtime);
  if (options.recorded) await recordBlob(testDb.db, placed);
  return { ...placed, file };
}

function tempFile(mtime?: Date, name = `${randomUUID()}.part`): string {
  const file = path.join(store.tempDir, name);
  fs.writeFileSync(file, 'a part of an upload', { mode: 0o600 });
  if (mtime) fs.utimesSync(file, mtime, mtime);
  return file;
}

const entriesOf = (dir: string): string[] => fs.readdirSync(dir).sort();

/** A whole sweep's result: `counts`, every other count 0, complete. */
const swept = (counts: Partial<OrphanSweepResult>): OrphanSweepResult => ({
  scanned: 0, young: 0, recorded: 0, removed: 0, removedBytes: 0, raced: 0, failed: 0, tempFiles: 0, tempBytes: 0, recovered: 0, complete: true, ...counts,
});

function sweep(options: { now?: Date; graceMs?: number; batchSize?: number; dryRun?: boolean; signal?: AbortSignal } = {}): Promise<OrphanSweepResult> {
  return sweepOrphanBlobs(testDb.db, store, { graceMs: GRACE, now: LATER, ...options });
}

describe('the blob orphan sweep', () => {
  it('removes an orphan older than the grace, keeps a younger orphan and a recorded blob whatever its age; a second run removes nothing', async () => {
    const old = await blob('an orphan: its ingest rolled back', { mtime: new Date(T0 - 30 * 24 * HOUR) });
    // Written 23 h before the sweep's clock: inside the grace.
    const young = await blob('an orphan whose transaction may still commit', { mtime: new Date(LATER.getTime() - 23 * HOUR) });
    const recorded = await blob('a recorded attachment', { recorded: true, mtime: new Date(T0 - 365 * 24 * HOUR) });

    const first = await sweep();
    expect(first).toEqual(swept({ scanned: 3, young: 1, recorded: 1, removed: 1, removedBytes: old.size }));
    expect({ old: fs.existsSync(old.file), young: fs.existsSync(young.file), recorded: fs.existsSync(recorded.file) }).toEqual({ old: false, young: true, recorded: true });
    // Nothing set aside stays in the temp folder; the claim left no row.
    expect(entriesOf(store.tempDir)).toEqual([]);
    const rows = await testDb.db.query<{ sha256: string; size: number }>('SELECT sha256, size FROM blobs ORDER BY sha256');
    expect(rows.rows).toEqual([{ sha256: recorded.sha256, size: recorded.size }]);

    expect(await sweep()).toMatchObject({ scanned: 2, young: 1, recorded: 1, removed: 0, raced: 0 });
    await expect(store.read(recorded.sha256)).resolves.toEqual(Buffer.from('a recorded attachment'));
  });

  it('counts a file from its placement, not its mtime: a blob linked in just now from a file written a month ago is young', async () => {
    const source = path.join(tempDir('sources'), 'IM000001');
    fs.writeFileSync(source, 'a DICOM slice extracted from a zip');
    const monthAgo = new Date(Date.now() - 30 * 24 * HOUR);
    fs.utimesSync(source, monthAgo, monthAgo);
    const sha256 = sha256Of(fs.readFileSync(source));
    await storeFileAsBlob(store, source, sha256);
    // Not recorded yet (its transaction still open): at the real time it must be kept.
    expect(await sweep({ now: new Date() })).toMatchObject({ scanned: 1, young: 1, removed: 0 });
    expect(store.exists(sha256)).toBe(true);
  });

  it('storing content already there places the writer’s own inode (the file found may be an orphan being swept), leaving no temp name', async () => {
    const found = await blob('a discharge summary sent twice');
    const source = path.join(tempDir('sources'), 'summary.pdf');
    fs.writeFileSync(source, 'a discharge summary sent twice');
    await expect(storeFileAsBlob(store, source, found.sha256)).resolves.toBe('existing');
    expect(fs.statSync(found.file).ino).toBe(fs.statSync(source).ino);
    // Again with the very same file: a rename onto the same inode does nothing, its temp name goes.
    await expect(storeFileAsBlob(store, source, found.sha256, false)).resolves.toBe('existing');
    expect(entriesOf(store.tempDir)).toEqual([]);
    await expect(store.read(found.sha256)).resolves.toEqual(Buffer.from('a discharge summary sent twice'));
  });

  it('removes temp files unwritten for 24 h or the grace, whichever is longer, and keeps the others', async () => {
    const stale = tempFile(new Date(Date.now() - 3 * 24 * HOUR));
    const fresh = tempFile();
    // Two hours old: past a one-hour grace, but an upload's part may wait that long for the rest of its request.
    const twoHours = tempFile(new Date(Date.now() - 2 * HOUR));
    const other = tempFile(new Date(Date.now() - 3 * 24 * HOUR), 'not-a-part');
    expect(STALE_SCRATCH_AFTER_MS).toBe(24 * HOUR);

    const result = await sweep({ now: new Date(), graceMs: HOUR });
    expect(result).toMatchObject({ tempFiles: 1, tempBytes: Buffer.byteLength('a part of an upload'), removed: 0 });
    expect([stale, fresh, twoHours, other].map((f) => fs.existsSync(f))).toEqual([false, true, true, true]);
  });

  it('keeps the file when its row commits between the listing and the removal: the claim waits for the writer’s transaction', async () => {
    const orphan = await blob('an attachment whose row is being written');
    const result = await whileRowsHeld(
      testDb.db,
      [['INSERT INTO blobs (sha256, size) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING', [orphan.sha256, orphan.size]]],
      '%INSERT INTO blobs%RETURNING sha256%',
      () => sweep(),
    );
    expect(result).toMatchObject({ scanned: 1, recorded: 0, removed: 0, raced: 1 });
    await expect(store.read(orphan.sha256)).resolves.toEqual(Buffer.from('an attachment whose row is being written'));
    expect(entriesOf(store.tempDir)).toEqual([]);
  });

  it('removes the file once the writer’s transaction holding its row rolls back', async () => {
    const orphan = await blob('an upload refused at its commit');
    let sweeping: Promise<OrphanSweepResult> | undefined;
    await expect(
      testDb.db.transaction(async (tx) => {
        await tx.query('INSERT INTO blobs (sha256, size) VALUES ($1, $2)', [orphan.sha256, orphan.size]);
        sweeping = sweep();
        await eventually(() => sessionWaitsFor(testDb.db, '%INSERT INTO blobs%RETURNING sha256%'), (waits) => waits, 30_000);
        throw new Error('the writer fails');
      }),
    ).rejects.toThrow('the writer fails');
    expect(await sweeping).toMatchObject({ removed: 1, raced: 0 });
    expect(fs.existsSync(orphan.file)).toBe(false);
  });

  it('keeps the file a writer places again at the very moment the sweep moves it (its own inode, put back)', async () => {
    const bytes = Buffer.from('an inline attachment stored again by a retried job');
    const orphan = await blob(bytes.toString());
    const rename = fs.promises.rename;
    let placedAgain = false;
    const spy = jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (!placedAgain && String(to).endsWith('.orphan')) {
        placedAgain = true;
        // The writer's rename lands between the sweep's look at the file and its move.
        await store.putBuffer(bytes);
      }
      await rename(from, to);
    });
    try {
      expect(await sweep()).toMatchObject({ scanned: 1, removed: 0, raced: 1 });
    } finally {
      spy.mockRestore();
    }
    expect(placedAgain).toBe(true);
    await expect(store.read(orphan.sha256)).resolves.toEqual(bytes);
    expect(entriesOf(store.tempDir)).toEqual([]);
  });

  it('settles the files an interrupted sweep set aside: put back when recorded or recent, removed otherwise', async () => {
    const setAside = async (text: string, options: { recorded?: boolean; mtime?: Date }): Promise<{ sha256: string; file: string }> => {
      const placed = await blob(text, options);
      const aside = path.join(store.tempDir, `${placed.sha256}.${randomUUID()}.orphan`);
      fs.renameSync(placed.file, aside);
      return { sha256: placed.sha256, file: placed.file };
    };
    const recorded = await setAside('recorded meanwhile', { recorded: true, mtime: new Date(Date.now() - 3 * 24 * HOUR) });
    const recent = await setAside('written an hour ago', { mtime: new Date(Date.now() - HOUR) });
    const stale = await setAside('an old orphan', { mtime: new Date(Date.now() - 3 * 24 * HOUR) });

    const result = await sweep({ now: new Date() });
    expect(result).toMatchObject({ recovered: 3, removed: 0 });
    expect([recorded, recent, stale].map((b) => fs.existsSync(b.file))).toEqual([true, true, false]);
    expect(entriesOf(store.tempDir)).toEqual([]);
    await expect(store.read(recorded.sha256)).resolves.toEqual(Buffer.from('recorded meanwhile'));
  });

  it('a dry run counts what it would remove and removes nothing', async () => {
    const old = await blob('an orphan to report');
    await blob('a recorded one', { recorded: true });
    const stale = tempFile(new Date(Date.now() - 3 * 24 * HOUR));
    expect(await sweep({ now: new Date(Date.now() + 2 * GRACE), dryRun: true })).toMatchObject({ scanned: 2, recorded: 1, removed: 1, removedBytes: old.size, tempFiles: 1 });
    expect([fs.existsSync(old.file), fs.existsSync(stale)]).toEqual([true, true]);
  });

  it('sweeps 2,000 files in batches and reports the counts', async () => {
    const N = 2000;
    const texts = Array.from({ length: N }, (_, i) => `file ${i} of a CT series`);
    const shas = texts.map((t) => sha256Of(Buffer.from(t)));
    // Written straight into the fan-out folders (the sweep does not care how): fast, no flushes.
    for (const [i, text] of texts.entries()) {
      const file = store.pathOf(shas[i] as string);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      // One orphan in five (one file in ten) written within the grace of the sweep's clock.
      if (i % 10 === 1) fs.utimesSync(file, new Date(LATER.getTime() - HOUR), new Date(LATER.getTime() - HOUR));
    }
    // Even-numbered files are recorded.
    const recordedShas = shas.filter((_, i) => i % 2 === 0);
    await testDb.db.query('INSERT INTO blobs (sha256, size) SELECT s, 20 FROM unnest($1::text[]) AS s', [recordedShas]);
    const queries = jest.spyOn(testDb.db, 'query');
    let result: OrphanSweepResult;
    let statements: string[];
    try {
      result = await sweep({ batchSize: 500 });
    } finally {
      statements = queries.mock.calls.map(([sql]) => sql);
      queries.mockRestore();
    }
    const young = shas.filter((_, i) => i % 10 === 1).length;
    const removedBytes = texts.filter((_, i) => i % 2 === 1 && i % 10 !== 1).reduce((n, t) => n + Buffer.byteLength(t), 0);
    expect(result).toEqual(swept({ scanned: N, young, recorded: N / 2, removed: N / 2 - young, removedBytes }));
    // The rows were read in batches of 500 (the old files: all but the young ones), not one query per file.
    const rowReads = statements.filter((sql) => sql.startsWith('SELECT sha256 FROM blobs'));
    expect(rowReads.length).toBe(Math.ceil((N - young) / 500));
    expect(shas.filter((sha) => fs.existsSync(store.pathOf(sha))).length).toBe(N / 2 + young);
  });

  it('stops at the signal fired mid-walk, and says so: what was looked at settled, the rest left for the next run', async () => {
    const orphans: { readonly file: string }[] = [];
    for (let i = 0; i < 5; i += 1) orphans.push(await blob(`orphan ${i}`));
    const onDisk = (): number => orphans.filter((o) => fs.existsSync(o.file)).length;
    const controller = new AbortController();
    const unlink = fs.promises.unlink;
    // The signal fires once the sweep has removed its first orphan (one file per batch: settled as soon as looked at).
    const spy = jest.spyOn(fs.promises, 'unlink').mockImplementation(async (file) => {
      await unlink(file);
      if (String(file).endsWith('.orphan')) controller.abort();
    });
    let stopped: OrphanSweepResult;
    try {
      stopped = await sweep({ signal: controller.signal, batchSize: 1 });
    } finally {
      spy.mockRestore();
    }
    expect(stopped).toMatchObject({ scanned: 1, removed: 1, complete: false });
    expect(onDisk()).toBe(4);
    expect(await sweep()).toMatchObject({ scanned: 4, removed: 4, complete: true });
    expect(onDisk()).toBe(0);
  });
});

describe('on the embedded PGlite database', () => {
  it('removes an old orphan and keeps a recorded blob (the claim rolled back there too)', async () => {
    const pglite = await openBackendDatabase('pglite');
    try {
      const orphan = await blob('an orphan beside PGlite');
      const kept = await store.putBuffer(Buffer.from('a recorded blob beside PGlite'));
      await recordBlob(pglite.db, kept);
      expect(await sweepOrphanBlobs(pglite.db, store, { graceMs: GRACE, now: LATER })).toMatchObject({ scanned: 2, recorded: 1, removed: 1, raced: 0, failed: 0 });
      expect([fs.existsSync(orphan.file), store.exists(kept.sha256)]).toEqual([false, true]);
      expect((await pglite.db.query('SELECT sha256 FROM blobs')).rows).toEqual([{ sha256: kept.sha256 }]);
    } finally {
      await pglite.close();
    }
  });
});

describe('npm run blobs:sweep', () => {
  it('runs the sweep once from the service’s environment: a dry run, then the run; bad arguments are named', async () => {
    const old = await blob('an orphan an operator sweeps');
    // At the real time: the orphan was placed just now (young, kept); the temp file is three days old.
    const stale = tempFile(new Date(Date.now() - 3 * 24 * HOUR));
    const env = { DATABASE_URL: testDb.url, DATA_DIR: dataDir, AUTH_JWT_SECRET: 'x'.repeat(40), ROLE: 'all' };
    expect(await sweepOnce(parseArgs(['--dry-run']), env)).toMatchObject({ scanned: 1, young: 1, removed: 0, tempFiles: 1 });
    expect(fs.existsSync(stale)).toBe(true);
    expect(await sweepOnce(parseArgs(['--grace-hours', '48']), env)).toMatchObject({ scanned: 1, young: 1, tempFiles: 1 });
    expect([fs.existsSync(stale), fs.existsSync(old.file)]).toEqual([false, true]);
    expect(() => parseArgs(['--force'])).toThrow(/Unknown argument "--force"/);
    await expect(sweepOnce(parseArgs(['--grace-hours', '0']), env)).rejects.toThrow(/BLOB_ORPHAN_GRACE_HOURS: must be a whole number of hours from 1 to 8760/);
  });
});

describe('BlobOrphanSweeper', () => {
  it('sweeps at its first call and once a period after, logging counts only', async () => {
    const orphan = await blob('an orphan the log must not name');
    let now = LATER.getTime();
    const sweeper = new BlobOrphanSweeper(testDb.db, store, { graceMs: GRACE, everyMs: 24 * HOUR, now: () => now });
    const capture = new CaptureTransport();
    const level = logger.level;
    logger.level = 'info';
    logger.add(capture);
    try {
      expect(await sweeper.sweepIfDue()).toMatchObject({ removed: 1 });
      now += HOUR;
      expect(await sweeper.sweepIfDue()).toBeUndefined();
      now += 24 * HOUR;
      expect(await sweeper.sweepIfDue()).toMatchObject({ removed: 0 });
    } finally {
      logger.remove(capture);
      logger.level = level;
    }
    const lines = capture.lines.filter((l) => l.includes('blobs.orphan_sweep'));
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ message: 'blob orphans swept', state: 'complete', counts: { removed: 1, removedBytes: orphan.size } });
    expect(lines[0]).not.toContain('[redacted]');
    for (const line of capture.lines) expect(line).not.toContain(orphan.sha256.slice(0, 16));
  });
});

describe('the sla-sweep worker', () => {
  it('runs the blob sweep in its scheduled job (the first one at start)', async () => {
    const stale = tempFile(new Date(Date.now() - 3 * 24 * HOUR));
    const prefix = `sobtest-${randomUUID().slice(0, 8)}`;
    const handles = startSlaSweep(
      { db: testDb.db, domain: loadDomainData(), blobs: new BlobStore(blobStoreRoot(dataDir)), config: { programTimeZone: 'America/New_York', blobOrphanGraceHours: 24 } },
      () => bullConnectionOptions(TEST_REDIS_URL),
      prefix,
    );
    try {
      await eventually(async () => fs.existsSync(stale), (exists) => !exists, 30_000);
    } finally {
      await handles.worker.close();
      await handles.queue.obliterate({ force: true }).catch(() => undefined);
      await handles.queue.close();
    }
  });
});
