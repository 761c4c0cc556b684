/**
 * Files the sandbox keeps once per machine under the OS temp folder (the slim StructureDefinitions of
 * `structure-definitions.ts`, the indexed definitions of `indexed-definitions.ts`): named by the
 * files they are made from, written so that a reader never sees half of one, and never worth a
 * failure (one that cannot be written costs the next process only the work of making it again).
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';

/** `size-mtime` of a file: what a cached file made from it is named by (another version of it, another name). */
export function fileStamp(file: string): string {
  const { size, mtimeMs } = fs.statSync(file);
  return `${size}-${Math.trunc(mtimeMs)}`;
}

/** Writes `data` to `file` through a temporary name and a rename; does nothing when it cannot. */
export function writeCacheFile(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, file);
  } catch {
    fs.rmSync(temp, { force: true });
  }
}
