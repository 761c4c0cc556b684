/**
 * Disk faults for tests: the errors a full disk (ENOSPC) or a failing one (EIO) gives, raised by
 * node's own file system calls for files under one folder only — PostgreSQL, Redis, the logs and
 * every other file of the process are untouched. A real full file system would need a mount (root);
 * this is fault injection at the operating system's boundary, none of our code is replaced.
 *
 * Linux: the folder a descriptor writes to is read from `/proc/self/fd`.
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';

export type DiskErrorCode = 'ENOSPC' | 'EIO';

const ERRNO: Readonly<Record<DiskErrorCode, { errno: number; text: string }>> = {
  ENOSPC: { errno: -28, text: 'no space left on device' },
  EIO: { errno: -5, text: 'i/o error' },
};

/** A file system error as node reports it (code, errno, syscall, path). */
export function diskError(code: DiskErrorCode, syscall: string, file?: string): NodeJS.ErrnoException {
  const { errno, text } = ERRNO[code];
  return Object.assign(new Error(`${code}: ${text}, ${syscall}${file ? ` '${file}'` : ''}`), { code, errno, syscall, ...(file ? { path: file } : {}) });
}

function pathOfFd(fd: unknown): string {
  if (typeof fd !== 'number') return '';
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
}

/** Which calls fail: data written (`write`), flushed (`fsync`), or a finished file moved into place (`rename`). */
export type DiskFaultAt = 'write' | 'fsync' | 'rename';

export interface DiskFault {
  /** Calls failed so far. */
  readonly hits: () => number;
  /** Ends the fault: the disk works again. */
  restore(): void;
}

type Callback = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;
type Variadic = (...args: unknown[]) => unknown;

/**
 * Fails `at` for files under `dir` with `code` until {@link DiskFault.restore}: `fs.write` and
 * `FileHandle.write` (streams, the blob writer, zip extraction), `fs.fsync`, `fs.promises.rename`.
 */
export async function failDiskUnder(dir: string, code: DiskErrorCode, at: DiskFaultAt): Promise<DiskFault> {
  const root = fs.realpathSync(dir);
  const under = (file: string): boolean => file === root || file.startsWith(`${root}/`);
  let hits = 0;
  const spies: { mockRestore(): void }[] = [];
  if (at === 'write' || at === 'fsync') {
    const calls = fs as unknown as Record<'write' | 'fsync', Variadic>;
    const original = calls[at];
    spies.push(
      jest.spyOn(calls, at).mockImplementation((...args: unknown[]) => {
        if (!under(pathOfFd(args[0]))) return original.apply(fs, args);
        hits += 1;
        process.nextTick(args[args.length - 1] as Callback, diskError(code, at));
        return undefined;
      }),
    );
  }
  if (at === 'write') {
    const probe = await fs.promises.open(__filename, 'r');
    const proto = Object.getPrototypeOf(probe) as { write: Variadic; fd: number };
    await probe.close();
    const original = proto.write;
    spies.push(
      jest.spyOn(proto, 'write').mockImplementation(function (this: { fd: number }, ...args: unknown[]) {
        if (!under(pathOfFd(this.fd))) return original.apply(this, args);
        hits += 1;
        return Promise.reject(diskError(code, 'write'));
      }),
    );
  }
  if (at === 'rename') {
    const original = fs.promises.rename;
    spies.push(
      jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
        if (!under(String(from))) return original(from, to);
        hits += 1;
        throw diskError(code, 'rename', String(from));
      }),
    );
  }
  return {
    hits: () => hits,
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

/** Every file under `dir` (recursively), relative to it; none when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}
