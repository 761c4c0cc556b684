/**
 * Runs every `bench:*` script of package.json, one after the other, then prints one table of
 * their headline figures (figure, target, measured, baseline, ratio to baseline, result) from the
 * JSON each wrote to `bench/results/<name>-latest.json` (see `BenchResult` in support.ts).
 *
 *   npm run bench                 # all of them
 *   npm run bench -- pull         # only bench:pull (names after `bench:`)
 *
 * `npm run bench` compiles once; a script of the form `tsc -p tsconfig.build.json && node …` is
 * then run as its `node …` part, so the build is not repeated per benchmark. Exit code 1 when a
 * benchmark failed or missed a target.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR, fmtInt, fmtRatio, table, type BenchResult } from './support';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD_PREFIX = /^tsc -p tsconfig\.build\.json && /;

interface Outcome {
  readonly name: string;
  readonly exitCode: number | null;
  readonly seconds: number;
  readonly result?: BenchResult;
  readonly problem?: string;
}

function benchScripts(only: readonly string[]): [string, string][] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  return Object.entries(pkg.scripts ?? {})
    .filter(([name]) => name.startsWith('bench:'))
    .filter(([name]) => only.length === 0 || only.includes(name.slice('bench:'.length)))
    .sort(([a], [b]) => a.localeCompare(b));
}

function runOne(script: string, command: string): Outcome {
  const name = script.slice('bench:'.length);
  const started = Date.now();
  process.stdout.write(`\n=== ${script} ===\n`);
  const run = BUILD_PREFIX.test(command)
    ? spawnSync(command.replace(BUILD_PREFIX, ''), { cwd: ROOT, stdio: 'inherit', shell: true })
    : spawnSync('npm', ['run', '--silent', script], { cwd: ROOT, stdio: 'inherit' });
  const seconds = (Date.now() - started) / 1000;
  const file = path.join(RESULTS_DIR, `${name}-latest.json`);
  if (!fs.existsSync(file)) return { name, exitCode: run.status, seconds, problem: `no ${path.relative(ROOT, file)}` };
  const result = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResult;
  if (Date.parse(result.startedAt) < started - 1000) return { name, exitCode: run.status, seconds, problem: `${path.relative(ROOT, file)} is from an earlier run` };
  return { name, exitCode: run.status, seconds, result };
}

function main(): number {
  const scripts = benchScripts(process.argv.slice(2));
  if (scripts.length === 0) {
    process.stderr.write('No bench:* scripts matched.\n');
    return 1;
  }
  const outcomes = scripts.map(([script, command]) => runOne(script, command));
  const rows: string[][] = [];
  for (const o of outcomes) {
    if (!o.result) {
      rows.push([o.name, o.problem ?? 'no result', '', '', '', '', `FAILED (exit ${o.exitCode ?? 'signal'})`]);
      continue;
    }
    for (const f of o.result.figures) {
      rows.push([
        o.name,
        f.figure,
        f.target ?? '',
        f.unit === '×' ? fmtRatio(f.measured) : `${fmtInt(f.measured)} ${f.unit}`,
        f.baseline !== undefined ? `${fmtInt(f.baseline)}${f.baselineName ? ` (${f.baselineName})` : ''}` : '',
        f.ratio !== undefined ? fmtRatio(f.ratio) : '',
        f.pass === undefined ? '' : f.pass ? 'PASS' : 'MISS',
      ]);
    }
  }
  process.stdout.write(`\n${table(['bench', 'figure', 'target', 'measured', 'baseline', 'ratio to baseline', 'result'], rows)}\n`);
  const failed = outcomes.filter((o) => !o.result || o.result.figures.some((f) => f.pass === false) || (o.exitCode !== 0 && o.exitCode !== 1));
  process.stdout.write(
    `\n${outcomes.length} benchmark(s), ${outcomes.reduce((a, o) => a + o.seconds, 0).toFixed(0)} s; ${failed.length === 0 ? 'all targets met' : `${failed.length} with a failure or a missed target`}.\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

process.exit(main());
