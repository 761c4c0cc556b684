/**
 * A blob's name outlives a crash once it is placed: after the rename (or link) that puts a blob in
 * its folder, the folder itself is fsynced, and so is the parent of every fan-out folder created for
 * it. Recorded at the operating system's boundary (node's own `rename`, `link` and `FileHandle.sync`,
 * passed through unchanged; the folder of a handle read from `/proc/self/fd`), and a folder that
 * cannot be flushed fails the placement instead of answering a blob that might not survive.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from '../../src/blobs/blob-store';
import { storeFileAsBlob } from '../../src/imaging/dicom-ingest';
import { diskError } from '../uploads/disk-faults';

type Event = readonly ['rename' | 'link' | 'sync', string];
type Variadic = (...args: unknown[]) => unknown;

let root: string;
let events: Event[];
let failSyncOf: string | undefined;
const spies: { mockRestore(): void }[] = [];

function pathOfFd(fd: number): string {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
}

beforeEach(async () => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sob-test-blob-durability-')));
  events = [];
  failSyncOf = undefined;
  const rename = fs.promises.rename;
  const link = fs.promises.link;
  spies.push(
    jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      await rename(from, to);
      events.push(['rename', String(to)]);
    }),
    jest.spyOn(fs.promises, 'link').mockImplementation(async (from, to) => {
      await link(from, to);
      events.push(['link', String(to)]);
    }),
  );
  const fsync = fs.fsync;
  spies.push(
    jest.spyOn(fs, 'fsync').mockImplementation((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      const file = pathOfFd(fd);
      fsync(fd, (err) => {
        if (!err) events.push(['sync', file]);
        callback(err);
      });
    }),
  );
  const probe = await fs.promises.open(__filename, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<'sync' | 'datasync', Variadic>;
  await probe.close();
  for (const method of ['sync', 'datasync'] as const) {
    const original = proto[method];
    spies.push(
      jest.spyOn(proto, method).mockImplementation(async function (this: { fd: number }, ...args: unknown[]) {
        const file = pathOfFd(this.fd);
        if (file === failSyncOf) throw diskError('EIO', 'fsync', file);
        await original.apply(this, args);
        events.push(['sync', file]);
      }),
    );
  }
});

afterEach(() => {
  for (const spy of spies.splice(0)) spy.mockRestore();
  fs.rmSync(root, { recursive: true, force: true });
});

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The events of the store's folders and blobs (not of its temp folder's files). */
const underStore = (): Event[] => events.filter(([, file]) => file.startsWith(root) && !file.startsWith(path.join(root, 'tmp')));
/** Where the temp file with the blob's bytes was flushed, and where the blob was placed. */
const flushedBeforePlaced = (target: string): boolean => {
  const flushed = events.findIndex(([op, file]) => op === 'sync' && file.startsWith(path.join(root, 'tmp')));
  const placed = events.findIndex(([op, file]) => op !== 'sync' && file === target);
  return flushed >= 0 && placed > flushed;
};

describe('blob store durability', () => {
  it('flushes the new fan-out folders into their parents and the blob’s folder after the rename', async () => {
    const store = new BlobStore(root);
    const bytes = Buffer.from('a discharge summary');
    const sha256 = sha256Of(bytes);
    const target = store.pathOf(sha256);
    const bb = path.dirname(target);
    const aa = path.dirname(bb);

    await store.putBuffer(bytes);
    expect(underStore()).toEqual([
      ['sync', aa],
      ['sync', root],
      ['rename', target],
      ['sync', bb],
    ]);
    expect(flushedBeforePlaced(target)).toBe(true);
  });

  it('flushes only the blob’s folder once the folders are known', async () => {
    const store = new BlobStore(root);
    await store.putBuffer(Buffer.from('first'));
    // Same fan-out folder (aa/bb) as the first: find bytes whose digest shares its first four hex digits.
    const prefix = sha256Of(Buffer.from('first')).slice(0, 4);
    let n = 0;
    while (sha256Of(Buffer.from(`second ${n}`)).slice(0, 4) !== prefix) n += 1;
    const bytes = Buffer.from(`second ${n}`);
    events = [];
    await store.putBuffer(bytes);
    expect(underStore()).toEqual([
      ['rename', store.pathOf(sha256Of(bytes))],
      ['sync', path.dirname(store.pathOf(sha256Of(bytes)))],
    ]);
  });

  it('a streamed blob: the writer’s commit flushes the folder after the rename', async () => {
    const store = new BlobStore(root);
    const writer = store.createWriter();
    await new Promise<void>((resolve, reject) => writer.end(Buffer.from('streamed report'), () => resolve()).on('error', reject));
    const { sha256 } = await writer.commit();
    const target = store.pathOf(sha256);
    expect(underStore().slice(-2)).toEqual([
      ['rename', target],
      ['sync', path.dirname(target)],
    ]);
    expect(flushedBeforePlaced(target)).toBe(true);
  });

  it('a DICOM file linked in: its bytes flushed before the link, its folder after', async () => {
    const store = new BlobStore(root);
    const file = path.join(root, 'ct-slice.dcm');
    const bytes = Buffer.from('DICM-ish bytes of one slice');
    fs.writeFileSync(file, bytes);
    const sha256 = sha256Of(bytes);
    await storeFileAsBlob(store, file, sha256);
    const target = store.pathOf(sha256);
    const sequence = underStore().filter(([, f]) => f === file || f === target || f === path.dirname(target));
    expect(sequence).toEqual([
      ['sync', file],
      ['link', target],
      ['sync', path.dirname(target)],
    ]);
  });

  it('a folder that cannot be flushed fails the placement (the caller records nothing and retries)', async () => {
    const store = new BlobStore(root);
    const bytes = Buffer.from('a lab report');
    const target = store.pathOf(sha256Of(bytes));
    await store.ensureDir(path.dirname(target));
    failSyncOf = path.dirname(target);
    await expect(store.putBuffer(bytes)).rejects.toMatchObject({ code: 'EIO' });
    failSyncOf = undefined;
    // The retry places the same content again, durably.
    await expect(store.putBuffer(bytes)).resolves.toMatchObject({ sha256: sha256Of(bytes) });
    expect(underStore().slice(-1)).toEqual([['sync', path.dirname(target)]]);
  });
});
