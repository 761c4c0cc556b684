/**
 * End-to-end benchmark (`npm run bench:e2e`): intake to delivered report for the fixture child,
 * through the public API exactly as `npm run demo` drives it (scripts/demo/journey.ts): endpoints
 * registered once, then per run a new case: intake, two sources, pull, assembly, a family upload,
 * add-on approval, payment, specialist matching, opinion, signature, and the delivery into the
 * referring EHR acknowledged. The sandbox world (SMART on) runs in this process at 0 ms and at
 * 20 ms added latency per request; the service runs in-process on a fresh PostgreSQL database.
 *
 * Flags: --runs N (per latency, default 3; the median is reported), --latencies 0,20.
 */
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { committedFixturesDir } from '../src/fixtures/fixture-child-intake';
import { startSandboxWorld } from '../src/sandbox/sandbox-world';
import { apiClient } from '../scripts/demo/api-client';
import { registerWorldEndpoints, runJourney } from '../scripts/demo/journey';
import { startBenchService } from './bench-service';
import { fmtInt, fmtRatio, machineInfo, table, writeResult, type BenchFigure } from './support';

const log = (line: string): void => {
  process.stderr.write(`[bench:e2e ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function parseArgs(argv: readonly string[]): { runs: number; latencies: number[] } {
  const args = { runs: 3, latencies: [0, 20] };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1] ?? '';
    if (argv[i] === '--runs') args.runs = Number(value);
    else if (argv[i] === '--latencies') args.latencies = value.split(',').map(Number);
    else throw new Error(`Unknown flag ${argv[i] ?? ''}`);
  }
  if (!Number.isInteger(args.runs) || args.runs < 1 || args.latencies.some((l) => !Number.isFinite(l) || l < 0)) throw new Error('--runs ≥ 1, --latencies as 0,20');
  return args;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
};

async function measure(latencyMs: number, runs: number): Promise<{ times: number[]; resources: number }> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-bench-e2e-'));
  const world = await startSandboxWorld({ auth: 'smart', fixturesDir: committedFixturesDir(), stateDir, latencyMs });
  const bench = await startBenchService('e2e');
  try {
    const tokens = { admin: await bench.token('admin', 'bench-admin'), caseManager: await bench.token('case_manager', 'bench-cm'), specialist: await bench.token('specialist', 'bench-specialist') };
    const ctx = { api: apiClient(bench.url), world, tokens, specialistSub: 'bench-specialist', say: () => undefined, progress: false, outDir: path.join(stateDir, 'out') };
    const endpointIds = await registerWorldEndpoints(ctx);
    const times: number[] = [];
    let resources = 0;
    for (let run = 1; run <= runs; run += 1) {
      const result = await runJourney(ctx, endpointIds);
      times.push(result.intakeToDeliveredMs);
      resources = result.resourcesPulled;
      log(`@${latencyMs} ms run ${run}/${runs}: intake to delivered ${fmtInt(result.intakeToDeliveredMs)} ms (${result.resourcesPulled} resources pulled)`);
    }
    return { times, resources };
  } finally {
    await bench.stop().catch((err: unknown) => log(`service stop failed: ${String(err)}`));
    await world.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const rows: string[][] = [];
  const figures: BenchFigure[] = [];
  let baselineMs: number | undefined;
  for (const latency of args.latencies) {
    const { times, resources } = await measure(latency, args.runs);
    const med = median(times);
    baselineMs ??= med;
    rows.push([`${latency} ms`, String(args.runs), fmtInt(resources), `${fmtInt(med)} ms`, `${fmtInt(Math.min(...times))}–${fmtInt(Math.max(...times))} ms`, fmtRatio(med / baselineMs)]);
    figures.push({
      figure: `intake to delivered report @${latency} ms (median of ${args.runs})`,
      measured: med,
      unit: 'ms',
      ...(latency !== args.latencies[0] ? { baseline: baselineMs, baselineName: `@${args.latencies[0] ?? 0} ms`, ratio: med / baselineMs } : {}),
    });
  }
  console.log('\nIntake to delivered report for the fixture child (the demo journey: pull of two care teams, assembly, family upload, payment, matching, signed opinion, delivery acknowledged by the referring EHR):');
  console.log(table(['sandbox latency', 'runs', 'resources', 'median', 'range', 'vs first latency'], rows));
  const written = writeResult({ bench: 'e2e', startedAt, durationMs: Date.now() - t0, machine: machineInfo(), pass: true, figures, details: { runs: args.runs, latencies: args.latencies } });
  console.log(`→ ${written.latest}`);
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
