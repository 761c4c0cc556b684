/**
 * An assembly holds the whole case in memory (normalize, dedupe and compose see every resource at
 * once): about {@link BYTES_PER_RESOURCE} of heap per raw resource. A case too large for the
 * process — a child with years of continuous glucose monitoring stored as Observations can have
 * hundreds of thousands — would not fail cleanly: the process would run out of heap and die, taking
 * every other job it runs with it, again at each retry. And two large assemblies at once (a pull's
 * and a rebuild) can do the same where each alone fits.
 *
 * So each assembly reserves its estimate from the process's budget before it reads the raw store:
 * it waits while other assemblies hold too much of it (first come, first served), and one that could
 * never fit is refused at once with {@link AssemblyTooLargeError}, naming what to change.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { HttpProblem } from '../http/problem';
import { logger } from '../log';

/**
 * Heap an assembly needs per raw resource, measured with `bench:assemble` (2026-11-28): 50,000
 * resources took 390 MB over the process's baseline, 150,000 took 1.3 GB; rounded up.
 */
export const BYTES_PER_RESOURCE = 10 * 1024;

/** Share of V8's heap limit assemblies may hold together by default (the rest: pulls, uploads, the API). */
const DEFAULT_HEAP_SHARE = 0.7;

const MB = 1024 * 1024;

/** The default budget of a process: {@link DEFAULT_HEAP_SHARE} of its V8 heap limit (`--max-old-space-size`). */
export function defaultAssemblyBudgetBytes(): number {
  return Math.floor(v8.getHeapStatistics().heap_size_limit * DEFAULT_HEAP_SHARE);
}

/** A case too large to assemble in this process (503: the request is sound, this process is too small for it). */
export class AssemblyTooLargeError extends HttpProblem {
  constructor(readonly resources: number, readonly budgetBytes: number) {
    super(
      503,
      'Case too large for this process',
      `The case holds ${resources} raw resources: assembling it needs about ${Math.ceil((resources * BYTES_PER_RESOURCE) / MB)} MB, ` +
        `more than this process allows assemblies (${Math.floor(budgetBytes / MB)} MB, ASSEMBLY_MEMORY_MB). ` +
        'Raise ASSEMBLY_MEMORY_MB (it caps the heap of the assembly thread) on workers with that much memory to spare, then rebuild the bundle.',
      [],
      { resources, budgetMb: Math.floor(budgetBytes / MB) },
    );
  }
}

/** The heap the assemblies of one process hold, reserved before each reads (see the module comment). */
export class AssemblyMemory {
  private held = 0;
  private readonly queue: { readonly resources: number; readonly bytes: number; readonly grant: () => void; readonly refuse: (err: Error) => void }[] = [];

  constructor(private budget: number = defaultAssemblyBudgetBytes()) {}

  get budgetBytes(): number {
    return this.budget;
  }

  /** Sets the budget (from configuration, at start-up). */
  setBudget(bytes: number): void {
    this.budget = bytes;
    // Waiting assemblies that can no longer fit at all are refused rather than kept waiting for ever.
    for (const w of this.queue.filter((x) => x.bytes > bytes)) {
      this.queue.splice(this.queue.indexOf(w), 1);
      w.refuse(new AssemblyTooLargeError(w.resources, bytes));
    }
    this.grantWaiting();
  }

  /**
   * Reserves the memory of an assembly of `resources` raw resources; waits while others hold too much.
   * @returns the release (call it once the assembly is stored or failed)
   * @throws AssemblyTooLargeError when it alone exceeds the budget
   */
  async reserve(resources: number): Promise<() => void> {
    const bytes = Math.max(1, resources) * BYTES_PER_RESOURCE;
    if (bytes > this.budget) throw new AssemblyTooLargeError(resources, this.budget);
    if (this.queue.length > 0 || this.held + bytes > this.budget) {
      await new Promise<void>((grant, refuse) => this.queue.push({ resources, bytes, grant, refuse }));
    } else {
      this.held += bytes;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.grantWaiting();
    };
  }

  /** Bytes reserved now, and assemblies waiting (for tests and metrics). */
  state(): { heldBytes: number; waiting: number } {
    return { heldBytes: this.held, waiting: this.queue.length };
  }

  /** Lets the waiting assemblies in, in order, as far as the budget goes. */
  private grantWaiting(): void {
    for (let next = this.queue[0]; next !== undefined && this.held + next.bytes <= this.budget; next = this.queue[0]) {
      this.queue.shift();
      this.held += next.bytes;
      next.grant();
    }
  }
}

/**
 * The memory this process may use: its cgroup's limit where it has one (a container), else the
 * machine's.
 */
export function availableMemoryBytes(): number {
  const constrained = process.constrainedMemory?.();
  const total = os.totalmem();
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

/** Share of the process's memory above which a budget is warned about (the rest: the main thread, the other jobs). */
const MAX_MEMORY_SHARE = 0.8;

/**
 * Sets a process's budget from `ASSEMBLY_MEMORY_MB`. The budget also caps the assembly thread's heap
 * (`assembly-thread.ts`), which is not bound by the main thread's `--max-old-space-size`; so what it
 * must fit in is the memory the process has: a budget above {@link MAX_MEMORY_SHARE} of it is warned
 * about, since it lets an assembly start that the system would kill the process for.
 */
export function configureAssemblyMemory(memory: AssemblyMemory, megabytes: number, availableBytes: number = availableMemoryBytes()): void {
  memory.setBudget(megabytes * MB);
  const availableMb = Math.floor(availableBytes / MB);
  if (megabytes > availableMb * MAX_MEMORY_SHARE) {
    logger.warn('ASSEMBLY_MEMORY_MB is more than this process has memory for: an assembly that large would run the machine (or container) out of memory', {
      assemblyMemoryMb: megabytes, availableMemoryMb: availableMb,
    });
  }
}

/** The process's assemblies share one budget (memory is the process's). */
export const processAssemblyMemory = new AssemblyMemory();
