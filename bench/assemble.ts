/**
 * Case-assembly benchmark (`npm run bench:assemble`).
 *
 * A fresh PostgreSQL database (created and dropped here) is seeded with one case of `--resources`
 * (default 50,000) generated resources from two sources, care teams A and B (half each), written
 * into the raw store by the pull's own `commitPage` (see `assemble-seed.ts`; seeding runs in a child
 * process so its memory is not this process's). A small case (2 × 1,000) is seeded as well and
 * assembled first as a warm-up (JIT, UCUM tables, connection pool), outside the figures.
 *
 * Measured in this process, in this order:
 * - **assembly**: `assembleCase` end to end, exactly as the pull's parent job runs it: read the raw
 *   store → normalize → fill attachment hashes → dedupe → Provenance → Composition → document
 *   Bundle → store it as a new `case_bundles` version. Resources/s = raw resources ÷ wall time.
 *   Peak RSS: `process.memoryUsage().rss` sampled every 20 ms during the phase, and the kernel's
 *   high-water mark of the process (`resourceUsage().maxRSS`) read right after it (it covers the
 *   warm-up too, which is far smaller).
 * - **baseline**: plain `JSON.parse` of the same raw bytes, i.e. every stored raw page body
 *   (the searchset Bundles as received), read from `raw_pages` first and then parsed one after the
 *   other, untimed read, timed parse (UTF-8 decode + parse). Resources/s of the same resources.
 *
 * The timed assembly runs `--runs` times (default 3) on the same case, each storing a new version as
 * a rebuild would, each in a fresh assembly thread warmed by the small case (as the first: a thread
 * kept from the run before would still hold that run's garbage): the throughput figure is the median run (this shared VM's speed moves by tens of
 * percent within minutes, so one run says little), the peak RSS the highest of any run. Beside the
 * wall-clock figures, the CPU the process spent per resource (both threads) and PostgreSQL's: steadier
 * than wall time when the host is busy.
 *
 * Targets (issue #5): ≥ 20,000 resources/s and peak RSS < 400 MB.
 *
 * Then, unless `--ceiling 0`, the same number of resources as two half cases assembled at once in two
 * threads (`assemble-ceiling.ts`, `--runs` times, the median shown): the most a design spreading one
 * case over both cores could reach here, and what two threads holding half a case each cost in RSS.
 *
 * Flags: --resources N (even, default 50000), --runs N (default 3), --profile FILE (a .cpuprofile of
 * the main thread during the first timed assembly), --ceiling 0|1 (default 1).
 * Env: TEST_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { assembleCase } from '../src/assembly/assemble';
import { processAssemblyThread } from '../src/assembly/assembly-thread';
import type { Database } from '../src/db/database';
import { openDatabase } from '../src/db/open';
import { setLogLevel } from '../src/log';
import { loadTerminologyMappings } from '../src/normalize/terminology';
import { parallelHalves, type CeilingCases, type CeilingRun } from './assemble-ceiling';
import type { SeededCase } from './assemble-seed';
import { createBenchDatabase } from './bench-service';
import {
  cpuTimer, diffPidCpu, fmtInt, fmtMb, fmtRatio, forceGc, hostBusyCpu, machineInfo, MB, pidCpu, processMaxRss, RssSampler, table, writeResult, type BenchFigure,
} from './support';

const BENCH = 'assemble';
const TARGET_RES_PER_S = 20_000;
const TARGET_PEAK_RSS_MB = 400;
const WARMUP_PER_TEAM = 1_000;

interface Args {
  resources: number;
  runs: number;
  profile?: string;
  /** Also measure two half cases at once in two threads (`assemble-ceiling.ts`). */
  ceiling: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { resources: 50_000, runs: 3, ceiling: true };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag ?? ''} needs a value`);
    if (flag === '--resources') args.resources = Number(value);
    else if (flag === '--runs') args.runs = Number(value);
    else if (flag === '--profile') args.profile = path.resolve(value);
    else if (flag === '--ceiling') args.ceiling = value !== '0';
    else throw new Error(`Unknown flag ${flag ?? ''}`);
  }
  if (!Number.isInteger(args.resources) || args.resources < 2_000 || args.resources % 2 !== 0) throw new Error('--resources must be an even integer ≥ 2000');
  if (!Number.isInteger(args.runs) || args.runs < 1 || args.runs > 20) throw new Error('--runs must be an integer from 1 to 20');
  return args;
}

const log = (line: string): void => {
  process.stderr.write(`[bench:assemble ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

/** Seeds a case in a child process (its generator memory stays out of this process's RSS). */
function seedInChild(dbUrl: string, perTeam: number): SeededCase {
  const script = path.join(__dirname, 'assemble-seed.js');
  const out = execFileSync(process.execPath, [script, dbUrl, String(perTeam)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: MB });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as SeededCase;
}

/** Runs `fn` under the V8 CPU profiler and writes the profile to `file`. */
async function profiled<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`CPU profile → ${file}`);
  }
}

interface AssemblyRun {
  readonly ms: number;
  readonly entries: number;
  readonly merged: number;
  readonly leftOut: number;
  readonly balanced: boolean;
  readonly rssBeforeBytes: number;
  readonly rssPeakBytes: number;
  readonly maxRssBytes: number;
  /** CPU ms of this process, and of PostgreSQL (this database's backends and the server's background processes). */
  readonly nodeCpuMs: number;
  readonly postgresCpuMs: number;
  /** Cores busy with anything else on the host during the assembly (noise on a shared machine). */
  readonly otherLoadCores: number;
  /** assembleCase's own wall time per phase (ms). */
  readonly timings: Readonly<Record<string, number>>;
  /** The longest the event loop was held during the assembly (ms): every other request and job of the process waits that long. */
  readonly longestBlockMs: number;
}

/** Our database's backends and the server's background processes (WAL writer, checkpointer…). */
async function postgresPids(db: Database): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL');
  return rows.map((r) => r.pid);
}

async function timedAssembly(db: Database, caseId: string, profile?: string): Promise<AssemblyRun> {
  const deps = { db, mappings: () => loadTerminologyMappings() };
  forceGc();
  const pidsBefore = await postgresPids(db);
  const pg0 = pidCpu(pidsBefore);
  const rssBefore = process.memoryUsage.rss();
  const sampler = new RssSampler(20).start();
  const cpu = cpuTimer();
  const host0 = hostBusyCpu();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const t0 = performance.now();
  const run = (): ReturnType<typeof assembleCase> => assembleCase(deps, caseId, { trigger: 'bench' });
  const result = profile ? await profiled(profile, run) : await run();
  const ms = performance.now() - t0;
  loopDelay.disable();
  const nodeCpuMs = cpu.stop();
  const { peakBytes } = sampler.stop();
  const hostMs = hostBusyCpu() - host0;
  const postgresCpuMs = diffPidCpu(pidCpu(new Set([...pidsBefore, ...(await postgresPids(db))])), pg0);
  const otherLoadCores = Number((Math.max(0, hostMs - nodeCpuMs - postgresCpuMs) / ms).toFixed(2));
  return {
    nodeCpuMs,
    postgresCpuMs,
    otherLoadCores,
    ms,
    entries: result.entries,
    merged: result.report.totals.merged,
    leftOut: result.report.totals.leftOut,
    balanced: result.report.totals.balanced,
    rssBeforeBytes: rssBefore,
    rssPeakBytes: peakBytes,
    maxRssBytes: processMaxRss(),
    timings: result.timings,
    longestBlockMs: loopDelay.max / 1e6,
  };
}

/** Plain JSON.parse of every raw page body of the case (read first, untimed; parse timed). */
async function parseBaseline(db: Database, caseId: string): Promise<{ ms: number; bytes: number; resources: number }> {
  const { rows } = await db.query<{ body: Buffer }>(
    `SELECT p.body FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id JOIN pulls l ON l.id = t.pull_id
     WHERE l.case_id = $1 ORDER BY p.task_id, p.page_no`,
    [caseId],
  );
  forceGc();
  let resources = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (const row of rows) {
    const bundle = JSON.parse(row.body.toString('utf8')) as { entry?: unknown[] };
    resources += bundle.entry?.length ?? 0;
    bytes += row.body.length;
  }
  return { ms: performance.now() - t0, bytes, resources };
}

/** Seeds the two half cases (and a second small case to warm the second thread), then runs {@link parallelHalves} `args.runs` times: the median run. */
async function ceilingRuns(db: Database, dbUrl: string, args: Args, warm: SeededCase): Promise<CeilingRun> {
  const perTeam = Math.floor(args.resources / 4);
  log(`seeding two half cases of ${fmtInt(2 * perTeam)} resources each for the two-thread ceiling …`);
  const cases: CeilingCases = { halves: [seedInChild(dbUrl, perTeam), seedInChild(dbUrl, perTeam)], warmups: [warm, seedInChild(dbUrl, WARMUP_PER_TEAM)] };
  await db.exec('VACUUM ANALYZE');
  const runs: CeilingRun[] = [];
  for (let i = 0; i < args.runs; i++) {
    const r = await parallelHalves(db, () => loadTerminologyMappings(), cases);
    runs.push(r);
    log(`two halves at once ${i + 1}/${args.runs}: ${fmtInt(r.resources)} resources in ${(r.ms / 1000).toFixed(2)} s = ${fmtInt(r.resources / (r.ms / 1000))} res/s, sampled peak RSS ${fmtMb(r.rssPeakBytes)}`);
  }
  return medianRun(runs);
}

/** The median run by wall time (the lower middle one for an even count). */
function medianRun<R extends { readonly ms: number }>(runs: readonly R[]): R {
  const run = [...runs].sort((a, b) => a.ms - b.ms)[Math.floor((runs.length - 1) / 2)];
  if (!run) throw new Error('no timed run');
  return run;
}

function printCeiling(c: CeilingRun, oneThreadResPerS: number): void {
  const resPerS = c.resources / (c.ms / 1000);
  console.log(
    `Two-thread ceiling (assemble-ceiling.ts): the same ${fmtInt(c.resources)} resources as two half cases assembled at once in two threads, ` +
      `nothing passed between them (median run): ${fmtInt(c.ms)} ms = ${fmtInt(resPerS)} res/s (${fmtRatio(resPerS / oneThreadResPerS)} the one-thread median), ` +
      `CPU ${((c.nodeCpuMs * 1000) / c.resources).toFixed(0)} µs/resource, RSS before ${fmtMb(c.rssBeforeBytes)}, sampled peak ${fmtMb(c.rssPeakBytes)}`,
  );
  console.log(`Phases of each half (ms): ${c.timings.map((t) => Object.entries(t).map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ')).join(' | ')}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  setLogLevel(process.env.LOG_LEVEL ?? 'warn');
  const database = await createBenchDatabase('asm');
  const dbUrl = new URL(database.url);
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: dbUrl.toString(), dataDir: '/nonexistent', poolSize: 6 });
    log(`seeding ${fmtInt(args.resources)} resources (two sources) through commitPage …`);
    const seeded = seedInChild(dbUrl.toString(), args.resources / 2);
    log(`seeded ${fmtInt(seeded.resources)} resources in ${fmtInt(seeded.pages)} pages (${fmtMb(seeded.pageBytes)} of page bodies) in ${(seeded.ms / 1000).toFixed(1)} s`);
    const warm = seedInChild(dbUrl.toString(), WARMUP_PER_TEAM);
    await db.exec('VACUUM ANALYZE');

    const runs: AssemblyRun[] = [];
    for (let i = 0; i < args.runs; i++) {
      // A fresh thread, warmed on the small case: every run starts as the first.
      await processAssemblyThread.close();
      await assembleCase({ db, mappings: () => loadTerminologyMappings() }, warm.caseId, { trigger: 'bench-warmup' });
      const r = await timedAssembly(db, seeded.caseId, i === 0 ? args.profile : undefined);
      if (!r.balanced) throw new Error('the completeness report does not balance');
      runs.push(r);
      log(`assembly ${i + 1}/${args.runs}: ${fmtInt(seeded.resources)} resources in ${(r.ms / 1000).toFixed(2)} s = ${fmtInt(seeded.resources / (r.ms / 1000))} res/s, sampled peak RSS ${fmtMb(r.rssPeakBytes)} (process high-water mark so far ${fmtMb(r.maxRssBytes)})`);
    }
    const run = medianRun(runs);
    const resPerS = seeded.resources / (run.ms / 1000);
    const parse = await parseBaseline(db, seeded.caseId);
    const parsePerS = parse.resources / (parse.ms / 1000);
    if (parse.resources !== seeded.resources) throw new Error(`baseline parsed ${parse.resources} resources, seeded ${seeded.resources}`);
    const ceiling = args.ceiling ? await ceilingRuns(db, dbUrl.toString(), args, warm) : undefined;

    // The process's high-water mark after the last run covers every run (and the far smaller warm-ups).
    const peakMb = Math.max(...runs.map((r) => Math.max(r.rssPeakBytes, r.maxRssBytes))) / MB;
    const ratio = resPerS / parsePerS;
    const perResourceUs = (ms: number): string => `${((ms * 1000) / seeded.resources).toFixed(0)} µs`;
    console.log(`Case assembly: ${fmtInt(seeded.resources)} raw resources from 2 sources (${fmtMb(parse.bytes)} of raw page bytes); bundle of ${fmtInt(run.entries)} entries, ${fmtInt(run.merged)} merged, ${fmtInt(run.leftOut)} left out`);
    console.log(
      table(
        ['run', 'time', 'res/s', 'CPU/resource (Node)', 'CPU/resource (PostgreSQL)', 'other load (cores)', 'sampled peak RSS'],
        runs.map((r, i) => [
          `${i + 1}${r === run ? ' (median)' : ''}`,
          `${fmtInt(r.ms)} ms`,
          fmtInt(seeded.resources / (r.ms / 1000)),
          perResourceUs(r.nodeCpuMs),
          perResourceUs(r.postgresCpuMs),
          r.otherLoadCores.toFixed(2),
          fmtMb(r.rssPeakBytes),
        ]),
      ),
    );
    console.log(
      table(
        ['phase', 'time', 'res/s', 'MB/s', 'ratio to JSON.parse', 'peak RSS'],
        [
          ['assembleCase (read raw → … → store bundle), median run', `${fmtInt(run.ms)} ms`, fmtInt(resPerS), (parse.bytes / MB / (run.ms / 1000)).toFixed(1), fmtRatio(ratio), fmtMb(peakMb * MB)],
          ['JSON.parse of the raw page bytes (baseline)', `${fmtInt(parse.ms)} ms`, fmtInt(parsePerS), (parse.bytes / MB / (parse.ms / 1000)).toFixed(1), '1.00×', ''],
        ],
      ),
    );
    console.log(
      `CPU during the median assembly: this process ${fmtInt(run.nodeCpuMs)} ms, PostgreSQL ${fmtInt(run.postgresCpuMs)} ms; ` +
        `other load on the host ${run.otherLoadCores.toFixed(2)} cores (shared machine: wall times are noisy)`,
    );
    console.log(`Phases of the median run (ms): ${Object.entries(run.timings).map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ')}`);
    console.log(`Longest event-loop block during the median assembly: ${fmtInt(run.longestBlockMs)} ms (the process's other requests and jobs wait that long)`);
    console.log(`RSS before the median assembly ${fmtMb(run.rssBeforeBytes)}, sampled peak during it ${fmtMb(run.rssPeakBytes)}, process high-water mark ${fmtMb(run.maxRssBytes)}`);
    if (ceiling) printCeiling(ceiling, resPerS);
    const figures: BenchFigure[] = [
      {
        figure: 'assembly throughput (50k, 2 sources)',
        unit: 'res/s',
        measured: resPerS,
        target: `≥ ${fmtInt(TARGET_RES_PER_S)}`,
        pass: resPerS >= TARGET_RES_PER_S,
        baseline: parsePerS,
        baselineName: 'JSON.parse res/s',
        ratio,
      },
      { figure: 'assembly peak RSS', unit: 'MB', measured: peakMb, target: `< ${TARGET_PEAK_RSS_MB}`, pass: peakMb < TARGET_PEAK_RSS_MB },
      { figure: 'longest event-loop block during assembly', unit: 'ms', measured: run.longestBlockMs },
      { figure: 'assembly CPU per resource (Node, both threads)', unit: 'µs', measured: (run.nodeCpuMs * 1000) / seeded.resources },
      ...(ceiling
        ? [
            { figure: 'two half cases at once in two threads (ceiling of a two-thread design)', unit: 'res/s', measured: ceiling.resources / (ceiling.ms / 1000) },
            { figure: 'two half cases at once in two threads, peak RSS', unit: 'MB', measured: ceiling.rssPeakBytes / MB },
          ]
        : []),
    ];
    const pass = figures.every((f) => f.pass !== false);
    const written = writeResult({
      bench: BENCH,
      startedAt,
      durationMs: performance.now() - t0,
      machine: machineInfo(),
      pass,
      figures,
      details: { seeded, run, runs, parse, ...(ceiling ? { ceiling } : {}) },
    });
    console.log(`${pass ? 'PASS' : 'MISS'} (targets: ≥ ${fmtInt(TARGET_RES_PER_S)} res/s, peak RSS < ${TARGET_PEAK_RSS_MB} MB) → ${written.latest}`);
    if (!pass) process.exitCode = 1;
  } finally {
    await processAssemblyThread.close();
    await db?.close().catch(() => undefined);
    await database.drop().catch((err: unknown) => log(`drop database failed: ${String(err)}`));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 2;
});
