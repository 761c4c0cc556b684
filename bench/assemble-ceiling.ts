/**
 * The most a two-thread assembly could do on this machine (`bench:assemble`'s second table).
 *
 * The case is split by source in advance: two cases of half the resources each (each itself of two
 * sources, so each has its own duplicates to merge), assembled at once by `assembleCase` in two
 * assembly threads of their own. Nothing passes between the threads and no dedupe crosses the
 * halves, so this is what a design that spreads one case's work over both cores could reach at best:
 * its resources/s are an upper bound, and its peak RSS what two threads each holding half a case
 * cost. Measured beside the one-thread figures of the same run (issue #5's question: would two
 * threads reach ≥ 20,000 res/s and < 400 MB here?).
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import { assembleCase } from '../src/assembly/assemble';
import { AssemblyMemory } from '../src/assembly/assembly-memory';
import { AssemblyThread } from '../src/assembly/assembly-thread';
import type { Database } from '../src/db/database';
import type { TerminologyMappings } from '../src/normalize/terminology';
import type { SeededCase } from './assemble-seed';
import { cpuTimer, forceGc, RssSampler } from './support';

/** The two halves and a small case per thread to warm it (outside the figures). */
export interface CeilingCases {
  readonly halves: readonly [SeededCase, SeededCase];
  readonly warmups: readonly [SeededCase, SeededCase];
}

/** One run: both halves assembled at once. */
export interface CeilingRun {
  readonly ms: number;
  readonly resources: number;
  readonly rssBeforeBytes: number;
  readonly rssPeakBytes: number;
  /** CPU of this process (all threads), ms. */
  readonly nodeCpuMs: number;
  /** Each half's own wall time per phase (ms). */
  readonly timings: readonly Readonly<Record<string, number>>[];
}

/**
 * Assembles both halves at once, each in a fresh thread warmed on its small case. The two share a
 * memory budget of their own, large enough for both: the process's would queue the second behind the
 * first (`assembly-memory.ts`), which is the one-thread design again.
 */
export async function parallelHalves(db: Database, mappings: () => TerminologyMappings, cases: CeilingCases): Promise<CeilingRun> {
  const threads = [new AssemblyThread(), new AssemblyThread()] as const;
  const budget = new AssemblyMemory(Number.MAX_SAFE_INTEGER);
  const deps = (i: 0 | 1): Parameters<typeof assembleCase>[0] => ({ db, mappings, assemblyThread: threads[i], assemblyMemory: budget });
  try {
    await Promise.all([0, 1].map((i) => assembleCase(deps(i as 0 | 1), cases.warmups[i as 0 | 1].caseId, { trigger: 'bench-warmup' })));
    forceGc();
    const rssBefore = process.memoryUsage.rss();
    const sampler = new RssSampler(20).start();
    const cpu = cpuTimer();
    const t0 = performance.now();
    const results = await Promise.all([0, 1].map((i) => assembleCase(deps(i as 0 | 1), cases.halves[i as 0 | 1].caseId, { trigger: 'bench' })));
    const ms = performance.now() - t0;
    const nodeCpuMs = cpu.stop();
    const { peakBytes } = sampler.stop();
    for (const r of results) if (!r.report.totals.balanced) throw new Error('the completeness report of a half does not balance');
    return {
      ms,
      resources: cases.halves[0].resources + cases.halves[1].resources,
      rssBeforeBytes: rssBefore,
      rssPeakBytes: peakBytes,
      nodeCpuMs,
      timings: results.map((r) => r.timings),
    };
  } finally {
    await Promise.all(threads.map((t) => t.close()));
  }
}
