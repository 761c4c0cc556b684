/**
 * The ingest job's scratch folders: `DATA_DIR/ingest/<zip row id>`, where an uploaded zip is
 * extracted before its files are linked into the blob store (`ingest.ts`, `expandZip`). The job
 * empties a zip's folder before and after extracting it; one it left because its process was killed
 * (SIGKILL, out of memory) holds a family's files, unreferenced, until removed here at start.
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Queryable } from '../db/database';

/** Where the ingest job extracts zips. */
export function ingestWorkDir(dataDir: string): string {
  return path.join(dataDir, 'ingest');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Removes scratch entries no ingest job can still be using:
 * - the folder of a zip that is no longer waiting to be extracted (its row is no longer `received`,
 *   or is gone): only a zip still `received` is ever extracted (again);
 * - anything last written before `writtenBefore` (a retried job empties its zip's folder first, and
 *   `writtenBefore` lies further back than an extraction can run).
 * The folders are listed before the rows are read: a zip's row exists before its folder does, so a
 * folder listed is never that of a zip whose extraction starts after the rows were read.
 * @returns how many entries were removed
 */
export async function removeStaleIngestScratch(db: Queryable, workDir: string, writtenBefore: Date): Promise<number> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(workDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const zipFolders = new Set(entries.filter((e) => e.isDirectory() && UUID.test(e.name)).map((e) => e.name));
  const waiting = new Set<string>();
  if (zipFolders.size > 0) {
    const { rows } = await db.query<{ id: string }>(
      "SELECT id FROM uploads WHERE id = ANY($1::uuid[]) AND kind = 'zip' AND state = 'received'",
      [[...zipFolders]],
    );
    for (const row of rows) waiting.add(row.id);
  }
  let removed = 0;
  for (const entry of entries) {
    const file = path.join(workDir, entry.name);
    if (waiting.has(entry.name) || !zipFolders.has(entry.name)) {
      const stat = await fs.promises.lstat(file).catch(() => undefined);
      if (stat === undefined || stat.mtimeMs >= writtenBefore.getTime()) continue;
    }
    await fs.promises.rm(file, { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}
