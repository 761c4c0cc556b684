/**
 * Fixture generator CLI. Runs compiled (no ts-node):
 *
 *   npx tsc -p tsconfig.build.json && node dist/scripts/generate-fixtures.js [options]
 *
 * Without --resources: (re)writes the committed fixtures (3 bundles, manifest, PDFs)
 * into --out (default `fixtures`). With --check: writes nothing, exits 1 when the
 * committed files differ from what the generator produces now.
 *
 * With --resources N: writes scaled records (N resources per care team) into --out
 * (default `data/fixtures-scaled`, git-ignored) for benchmarks.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { buildFixtureFiles, DEFAULT_SEED, FIXTURE_PATHS, writeScaledFixtures, type TeamKey } from '../src/fixtures/index';

const USAGE = `Usage: node dist/scripts/generate-fixtures.js [options]
  --seed N            PRNG seed (default ${DEFAULT_SEED}, the committed fixtures)
  --out DIR           output directory (default: fixtures, or data/fixtures-scaled with --resources)
  --check             compare the committed fixtures with the generator output; write nothing
  --resources N       scaled mode: N resources per care-team file (e.g. 100000)
  --team a|b|both     scaled mode: which care teams (default both)
  --format bundle|ndjson  scaled mode: transaction Bundle JSON (default) or NDJSON
  --pretty            scaled mode: pretty-print bundles (default compact)
  --help`;

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

/** Write or check the committed fixtures. Returns the process exit code. */
async function curated(seed: number, outDir: string, check: boolean): Promise<number> {
  const files = await buildFixtureFiles(seed);
  const toDisk = (path: string): string => join(outDir, relative('fixtures', path));
  if (check) {
    const stale: string[] = [];
    for (const f of files) {
      const current = await readFile(toDisk(f.path)).catch(() => undefined);
      if (!current || !current.equals(f.content)) stale.push(f.path);
    }
    if (stale.length > 0) {
      process.stderr.write(`Fixtures out of date (run \`npm run fixtures\`):\n  ${stale.join('\n  ')}\n`);
      return 1;
    }
    process.stdout.write(`Fixtures up to date (${files.length} files).\n`);
    return 0;
  }
  for (const f of files) {
    await mkdir(dirname(toDisk(f.path)), { recursive: true });
    await writeFile(toDisk(f.path), f.content);
  }
  // Remove PDFs from an earlier generation that no longer exist.
  const pdfDir = toDisk(FIXTURE_PATHS.pdfDir);
  const wanted = new Set(files.map((f) => toDisk(f.path)));
  for (const name of await readdir(pdfDir)) {
    if (name.endsWith('.pdf') && !wanted.has(join(pdfDir, name))) await rm(join(pdfDir, name));
  }
  for (const f of files) process.stdout.write(`wrote ${toDisk(f.path)} (${f.content.length} bytes)\n`);
  return 0;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'boolean', default: false },
      resources: { type: 'string' },
      team: { type: 'string', default: 'both' },
      format: { type: 'string', default: 'bundle' },
      pretty: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seed = positiveInt('seed', values.seed) ?? DEFAULT_SEED;
  const resources = positiveInt('resources', values.resources);
  if (resources === undefined) return curated(seed, values.out ?? 'fixtures', values.check ?? false);

  const teams: TeamKey[] = values.team === 'both' ? ['a', 'b'] : values.team === 'a' || values.team === 'b' ? [values.team] : [];
  if (teams.length === 0) throw new Error(`--team must be a, b or both, got ${values.team ?? ''}`);
  if (values.format !== 'bundle' && values.format !== 'ndjson') throw new Error(`--format must be bundle or ndjson, got ${values.format ?? ''}`);
  const result = await writeScaledFixtures({ outDir: values.out ?? 'data/fixtures-scaled', resources, seed, teams, format: values.format, pretty: values.pretty ?? false });
  for (const f of result.files) {
    process.stdout.write(`wrote ${f.path}: ${f.resources} resources, ${(f.bytes / 1_048_576).toFixed(1)} MiB ${JSON.stringify(f.counts)}\n`);
  }
  process.stdout.write(`done in ${result.milliseconds} ms\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exitCode = 2;
  },
);
