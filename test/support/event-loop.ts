import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of `/proc/<pid>/task/<tid>/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time this process's main thread (the event loop's) has used so far, in ms: user plus system
 * time from `/proc/self/task/<pid>/stat` (the main thread's id is the process id). Unlike
 * `process.cpuUsage()`, worker threads and V8's helper threads are not counted; unlike wall-clock
 * gaps and event-loop utilization, time spent waiting for a core (both taken by other work) or
 * blocked on a full stderr pipe is not counted either. 10 ms resolution.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
export function mainThreadCpuMs(): number {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/**
 * How long the event loop was held while some work ran (tests of the work that runs off the event
 * loop: the assembly thread, the PDF thread): the longest gap between ticks of a 5 ms timer, and the
 * event loop's utilization (the share of the time it was busy rather than waiting), and the CPU time
 * the main thread used meanwhile (`mainCpuMs`: the measure that other work on the machine does not
 * disturb). `longestHeldCpuMs` is the longest gap counted in the main thread's own CPU time: how long
 * the loop was held by work of this process, not by waiting for a core on a loaded machine.
 * @see https://nodejs.org/docs/latest-v20.x/api/perf_hooks.html#performanceeventlooputilizationutilization1-utilization2
 */
export async function longestGapDuring<T>(work: () => Promise<T>): Promise<{ result: T; longestGapMs: number; longestHeldCpuMs: number; ms: number; utilization: number; mainCpuMs: number }> {
  const elu = performance.eventLoopUtilization();
  const cpuAtStart = mainThreadCpuMs();
  const start = performance.now();
  let last = start;
  let lastCpu = cpuAtStart;
  let longestGapMs = 0;
  let longestHeldCpuMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = mainThreadCpuMs();
    longestGapMs = Math.max(longestGapMs, now - last);
    longestHeldCpuMs = Math.max(longestHeldCpuMs, cpu - lastCpu);
    last = now;
    lastCpu = cpu;
  }, 5);
  try {
    const result = await work();
    const end = performance.now();
    return {
      result,
      longestGapMs: Math.max(longestGapMs, end - last),
      longestHeldCpuMs: Math.max(longestHeldCpuMs, mainThreadCpuMs() - lastCpu),
      ms: end - start,
      utilization: performance.eventLoopUtilization(elu).utilization,
      mainCpuMs: mainThreadCpuMs() - cpuAtStart,
    };
  } finally {
    clearInterval(timer);
  }
}
