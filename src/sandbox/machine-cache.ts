/**
 * Files the sandbox keeps once per machine under the OS temp folder (the slim StructureDefinitions of
 * `structure-definitions.ts`, the indexed definitions of `indexed-definitions.ts`): named by the
 * files they are made from, written so that a reader never sees half of one, never worth a failure
 * (one that cannot be written costs the next process only the work of making it again), and removed
 * a day after newer sources have replaced them.
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';

/** `size-mtime` of a file: what a cached file made from it is named by (another version of it, another name). */
export function fileStamp(file: string): string {
  const { size, mtimeMs } = fs.statSync(file);
  return `${size}-${Math.trunc(mtimeMs)}`;
}

/** How long a cache file made from other versions of its sources is kept (another checkout may still use it). */
export const STALE_CACHE_FILE_MS = 24 * 60 * 60 * 1000;

/**
 * Writes `data` to `file` through a temporary name and a rename; does nothing when it cannot. Files
 * of the same kind beside it (their names start with `kind`) not written for
 * {@link STALE_CACHE_FILE_MS} are removed: made from earlier versions of the sources (each `npm ci`
 * gives them new modification times), they would otherwise pile up, several MB each.
 */
export function writeCacheFile(file: string, data: string | Uint8Array, kind: string): void {
  const dir = path.dirname(file);
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, file);
  } catch {
    try {
      fs.rmSync(temp, { force: true });
    } catch {
      // No folder to hold it (ENOTDIR, EACCES): there is no temporary file either.
    }
    return;
  }
  removeStale(dir, kind, path.basename(file));
}

function removeStale(dir: string, kind: string, current: string): void {
  try {
    for (const name of fs.readdirSync(dir)) {
      if (name === current || !name.startsWith(kind)) continue;
      const other = path.join(dir, name);
      if (Date.now() - fs.statSync(other).mtimeMs > STALE_CACHE_FILE_MS) fs.rmSync(other, { force: true });
    }
  } catch {
    // Another process removing the same files, or a folder not readable: they are removed another time.
  }
}
