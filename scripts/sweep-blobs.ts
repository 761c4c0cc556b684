/**
 * Runs the blob store's orphan sweep once (what the workers do once a day, `src/blobs/orphan-sweep.ts`):
 * removes blob files no `blobs` row names, changed longer ago than `BLOB_ORPHAN_GRACE_HOURS`, and
 * stale temp files. Reads the service's configuration (`DATA_DIR`, `DATABASE_URL`, …) from the
 * environment; prints the counts as JSON, never a name. Safe beside running workers and API (the
 * embedded PGlite database excepted: only one process can open it, so stop the service first).
 *
 *   npm run blobs:sweep [-- --dry-run] [-- --grace-hours 48]
 */
import { BlobStore, blobStoreRoot } from '../src/blobs/blob-store';
import { orphanGraceMs, sweepOrphanBlobs, type OrphanSweepResult } from '../src/blobs/orphan-sweep';
import { loadConfig } from '../src/config';
import { openDatabase } from '../src/db/open';

interface SweepArgs {
  readonly dryRun: boolean;
  /** Overrides `BLOB_ORPHAN_GRACE_HOURS` (validated the same way). */
  readonly graceHours?: string;
}

export function parseArgs(argv: readonly string[]): SweepArgs {
  let dryRun = false;
  let graceHours: string | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === '--dry-run') dryRun = true;
    else if (flag === '--grace-hours') {
      graceHours = argv[i + 1];
      if (graceHours === undefined) throw new Error('--grace-hours needs a number of hours');
      i += 1;
    } else throw new Error(`Unknown argument "${flag ?? ''}" (known: --dry-run, --grace-hours <hours>)`);
  }
  return { dryRun, ...(graceHours !== undefined ? { graceHours } : {}) };
}

export async function sweepOnce(args: SweepArgs, env: NodeJS.ProcessEnv = process.env): Promise<OrphanSweepResult> {
  const config = loadConfig({ ...env, ...(args.graceHours !== undefined ? { BLOB_ORPHAN_GRACE_HOURS: args.graceHours } : {}) });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    return await sweepOrphanBlobs(db, new BlobStore(blobStoreRoot(config.dataDir)), { graceMs: orphanGraceMs(config), dryRun: args.dryRun });
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  (async () => {
    const args = parseArgs(process.argv.slice(2));
    const result = await sweepOnce(args);
    process.stdout.write(`${JSON.stringify({ dryRun: args.dryRun, ...result })}\n`);
  })().catch((err: unknown) => {
    process.stderr.write(`blobs:sweep: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
}
