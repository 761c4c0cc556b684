/**
 * Small helpers shared by the benchmarks under `bench/`: RSS sampling, forced GC, table printing
 * and the JSON result file that `bench/run-all.ts` collects.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collectGarbage } from '../src/util/full-gc';

export const MB = 1024 * 1024;

/** Where benchmarks write their JSON (git-ignored). Resolved from the repo root (`dist/bench/x.js` → `bench/results`). */
export const RESULTS_DIR = path.resolve(__dirname, '..', '..', 'bench', 'results');

/**
 * One headline figure of a benchmark, in the shape `bench/run-all.ts` prints: what was measured,
 * the target it is held to, and (when there is one) the baseline it is compared with.
 */
export interface BenchFigure {
  readonly figure: string;
  readonly unit: string;
  readonly measured: number;
  /** Human-readable target, e.g. `≥ 20000` or `< 400`. */
  readonly target?: string;
  readonly pass?: boolean;
  /** The baseline measured in the same run (e.g. the naive loop), and measured / baseline. */
  readonly baseline?: number;
  readonly baselineName?: string;
  readonly ratio?: number;
}

/** The file every `bench:*` script writes to `bench/results/<bench>-latest.json`. */
export interface BenchResult {
  readonly bench: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: { readonly node: string; readonly cpus: number; readonly platform: string };
  readonly pass: boolean;
  readonly figures: readonly BenchFigure[];
  /** Everything else the bench wants to keep (per-phase details). */
  readonly details: unknown;
}

export function writeResult(result: BenchResult): { latest: string; stamped: string } {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const stamped = path.join(RESULTS_DIR, `${result.bench}-${result.startedAt.replace(/[:.]/g, '-')}.json`);
  const latest = path.join(RESULTS_DIR, `${result.bench}-latest.json`);
  fs.writeFileSync(stamped, json);
  fs.writeFileSync(latest, json);
  return { latest, stamped };
}

/** Two full GCs (the second collects what the first's finalizers let go). */
export function forceGc(): void {
  collectGarbage();
  collectGarbage();
}

/** Samples `process.memoryUsage().rss` every `intervalMs` (the event loop permitting) and keeps the peak. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakBytes = 0;
  private samples = 0;

  constructor(private readonly intervalMs = 50) {}

  start(): this {
    this.peakBytes = process.memoryUsage.rss();
    this.samples = 1;
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    this.samples += 1;
    if (rss > this.peakBytes) this.peakBytes = rss;
  }

  /** Stops sampling; returns the peak RSS (bytes) seen and the number of samples. */
  stop(): { peakBytes: number; samples: number } {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return { peakBytes: this.peakBytes, samples: this.samples };
  }
}

/** CPU time of this process (user + system, ms) between `start()` and `stop()`. */
export function cpuTimer(): { stop(): number } {
  const start = process.cpuUsage();
  return {
    stop() {
      const d = process.cpuUsage(start);
      return (d.user + d.system) / 1000;
    },
  };
}

/** The kernel's high-water mark of this process's RSS (bytes), since it started. */
export function processMaxRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmtMb = (bytes: number): string => `${(bytes / MB).toFixed(0)} MB`;
export const fmtRatio = (r: number): string => `${r.toFixed(2)}×`;

/** A plain text table; numbers (and anything that looks like one) are right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+≥<>~ ]*[\d,.]+( ?[%×]| MB| ms| s| µs)?$/.test(r[i] ?? '') || (r[i] ?? '') === ''));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function machineInfo(): BenchResult['machine'] {
  return { node: process.version, cpus: os.availableParallelism(), platform: `${os.platform()} ${os.release()}` };
}

/** CPU time (ms) of this process's threads, grouped by thread name (Linux /proc; empty elsewhere). */
export function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  const tick = 1000 / 100; // USER_HZ
  for (const tid of tids) {
    try {
      const comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * tick;
      const name = tid === String(process.pid) ? 'main' : comm.replace(/[0-9]+$/, '').trim();
      out[name] = (out[name] ?? 0) + ms;
    } catch {
      // thread ended
    }
  }
  return out;
}

/**
 * CPU time (ms) of processes on this host, per pid, for the pids `pids()` names (Linux /proc). Diff two
 * snapshots with {@link diffPidCpu}: a process that ended between them drops out instead of counting negative.
 */
export function pidCpu(pids: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // process ended
    }
  }
  return out;
}

/** Pids of running processes with this command name (`/proc/<pid>/comm`). */
export function pidsNamed(name: string): number[] {
  const out: number[] = [];
  try {
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name) out.push(Number(d));
      } catch {
        // ended
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/** CPU ms between two {@link pidCpu} snapshots, summed over pids alive in the second (a new pid counts whole). */
export function diffPidCpu(after: Map<number, number>, before: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += Math.max(0, ms - (before.get(pid) ?? 0));
  return total;
}

export function diffCpu(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Busy CPU time (ms) of the whole host since boot, from /proc/stat (all cores; 0 elsewhere). */
export function hostBusyCpu(): number {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy = all − idle − iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - (f[3] ?? 0) - (f[4] ?? 0)) * 10;
  } catch {
    return 0;
  }
}
