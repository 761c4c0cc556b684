/**
 * Case assembly off the event loop. Building a case bundle is seconds of CPU for a large case
 * (50,000 resources: about 4 s here, measured with `bench:assemble`), all synchronous: run on the
 * main thread it would hold the API (health checks included) and every other job of the process —
 * pulls, deliveries — for that long. So the CPU part (`build-assembly.ts`) runs in one
 * `node:worker_threads` thread, one assembly at a time, while the main thread keeps serving; the
 * main thread only reads the raw store and stores the result.
 *
 * The thread has its own V8 heap, capped at the assembly memory budget (`ASSEMBLY_MEMORY_MB`): a case
 * that runs it out of memory fails that assembly ({@link AssemblyTooLargeError}, no retries), and
 * the next one starts a fresh thread; the process and its other work go on. After `idleMs` without
 * work (default 1 s, `ASSEMBLY_THREAD_IDLE_MS`) the thread ends, giving its heap back to the system:
 * an idle thread would otherwise keep a large case's garbage (hundreds of MB) until its next
 * assembly. Starting one costs ~0.2 s, small beside the assemblies that need it.
 *
 * The thread's lifecycle (start, one job at a time, idle end, failures) is {@link WorkerHost}'s
 * (`src/util/worker-host.ts`); this module adds the heap cap and the assembly protocol.
 *
 * Worker script: the compiled `assembly-worker.js` next to this module, or its Jest bootstrap
 * (`src/util/worker-source.ts`).
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import { collectGarbage } from '../util/full-gc';
import { startWorker, WorkerHost } from '../util/worker-host';
import { workerSourceFor, type WorkerSource } from '../util/worker-source';
import { AssemblyTooLargeError, processAssemblyMemory } from './assembly-memory';
import type { AssemblyThreadReply, AssemblyThreadRequest } from './assembly-thread-protocol';
import type { AssemblyJob, BuiltSummary, RawText } from './build-assembly';
import { COLLECT_GARBAGE_FROM_RESOURCES, PARTS_PER_MAIN_COLLECTION } from './large-assembly-gc';

const MB = 1024 * 1024;

/**
 * Raw batches sent and not yet parsed, at most: reading stops for the thread to catch up beyond. The
 * raw store is read faster than the thread parses (a cursor in the table's order), and batches queued
 * for it only raised its heap's high-water mark (bench:assemble: peak RSS 505–536 MB against 461–497
 * MB before the cursor, which read no faster than the parse anyway).
 */
export const RAW_BATCHES_AHEAD = 2;

/** Longest single wait for the thread's count (ms): each wait ends by then, so none is left behind. */
const WAIT_SLICE_MS = 1_000;

/** Hands a batch of raw resources to the thread; resolves when reading may go on. */
export type SendRaw = (batch: readonly RawText[]) => Promise<void>;

export interface AssemblyThreadOptions {
  /** The thread's V8 old-generation cap in bytes, read at each start (default: the process's assembly budget). */
  readonly heapBytes?: () => number;
  /** The thread ends after this long without work (ms; default 1 s). */
  readonly idleMs?: number;
  /** Limit for the thread to start and say it is ready (ms; default 60 s: the Jest bootstrap transpiles on load). */
  readonly startupTimeoutMs?: number;
  /** Override the worker code (unusual deployment layouts). */
  readonly source?: WorkerSource;
}

/** The assembly thread stopped (crashed, did not start, was closed) before it answered. */
export class AssemblyThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssemblyThreadError';
  }
}

/** An assembly built in the thread, its bundle held there. */
export interface BuiltInThread extends BuiltSummary {
  /** The bundle's text as UTF-8, part by part (`bundleJsonByteParts`), each serialised in the thread when asked for. */
  readonly parts: AsyncIterable<Uint8Array>;
}

/**
 * One assembly thread, started on demand, one assembly at a time in the order asked (see the module
 * comment); `running`, `started`, `setIdleMs` and `close` are {@link WorkerHost}'s.
 */
export class AssemblyThread extends WorkerHost<AssemblyThreadRequest, AssemblyThreadReply> {
  /** The heap cap of the thread running now (bytes; to name a case that ran it out of memory). */
  private heapBytes = 0;
  /** Resources of the assembly under way (to name a case that ran the thread out of memory). */
  private resources = 0;

  constructor(private readonly options: AssemblyThreadOptions = {}) {
    super({ name: 'assembly thread', idleMs: options.idleMs ?? 1000, startupTimeoutMs: options.startupTimeoutMs });
  }

  /**
   * Builds an assembly in the thread and lets `use` take its text (and store it). The thread is this
   * assembly's from `load` until `use` settles: `load` reads what the job needs, handing the raw
   * store's resources to `sendRaw` batch by batch as it reads them (the thread parses them meanwhile;
   * this thread never holds the whole case), and the job it returns is sent with the build.
   * Rejects with the build's own error, or {@link AssemblyTooLargeError} / {@link AssemblyThreadError}.
   */
  build<T>(load: (sendRaw: SendRaw) => Promise<AssemblyJob>, use: (built: BuiltInThread) => Promise<T>): Promise<T> {
    return this.exclusive((worker, id) => this.buildNow(worker, id, load, use));
  }

  private async buildNow<T>(
    worker: Worker,
    id: number,
    load: (sendRaw: SendRaw) => Promise<AssemblyJob>,
    use: (built: BuiltInThread) => Promise<T>,
  ): Promise<T> {
    let taken = false;
    try {
      // The raw batches go to the thread as they are read (it parses them meanwhile); none is kept here.
      const parsed = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
      worker.postMessage({ type: 'begin', id, parsed: parsed.buffer as SharedArrayBuffer } satisfies AssemblyThreadRequest);
      this.resources = 0;
      let sent = 0;
      const job = await load(async (batch) => {
        this.resources += batch.length;
        worker.postMessage({ type: 'raw', id, batch } satisfies AssemblyThreadRequest);
        sent += 1;
        await this.parsedUpTo(worker, parsed, sent - RAW_BATCHES_AHEAD);
      });
      this.resources += job.built.length;
      const building = this.request(worker, { type: 'build', id, job }, 'built');
      // The raw rows' garbage (their decoded text, twice over: as rows and as the message copies) goes
      // now, while the thread builds on the other core: else it would stay in this heap, grown by it,
      // until the store phase, the assembly's peak.
      if (this.resources >= COLLECT_GARBAGE_FROM_RESOURCES) collectGarbage();
      const built = await building;
      return await use({ ...built.built, parts: this.partsOf(worker, id, () => (taken = true)) });
    } finally {
      // Not taken to the end of its text (the read failed, the version was refused as stale, an INSERT
      // failed): the thread lets go of what it holds for this assembly.
      if (!taken) this.current?.postMessage({ type: 'drop', id } satisfies AssemblyThreadRequest);
    }
  }

  /**
   * Resolves once the thread has taken `count` raw batches (`parsed[0]`, which it counts up and
   * notifies), so that reading runs at most {@link RAW_BATCHES_AHEAD} batches ahead of the parsing.
   * Rejects as the thread stopped if it stops meanwhile (out of its heap: {@link AssemblyTooLargeError}).
   */
  private async parsedUpTo(worker: Worker, parsed: Int32Array, count: number): Promise<void> {
    const stopped = this.whenStopped(worker);
    for (let seen = Atomics.load(parsed, 0); seen < count; seen = Atomics.load(parsed, 0)) {
      if (this.current !== worker) throw this.stopReason(worker) ?? this.threadError('the assembly thread stopped');
      // The timeout only lets the wait end: a notify that never comes (the thread stopped) is met by `stopped`.
      await Promise.race([Atomics.waitAsync(parsed, 0, seen, WAIT_SLICE_MS).value, stopped]);
    }
  }

  /** The bundle's parts, asked of the thread that holds it one at a time (it gone, the next ask fails). */
  private async *partsOf(worker: Worker, id: number, onEnd: () => void): AsyncGenerator<Uint8Array, void, undefined> {
    for (let received = 0; ; received++) {
      const asked = this.request(worker, { type: 'part', id }, 'part');
      // The spent parts' memory goes every few parts, while the thread serialises the next one.
      if (received > 0 && received % PARTS_PER_MAIN_COLLECTION === 0) collectGarbage();
      const reply = await asked;
      if (reply.part === undefined) {
        onEnd();
        return;
      }
      yield reply.part;
    }
  }

  /** The worker, its heap capped at the assembly budget as it is now. */
  protected override spawn(): Worker {
    this.heapBytes = (this.options.heapBytes ?? (() => processAssemblyMemory.budgetBytes))();
    const source = this.options.source ?? workerSourceFor(__dirname, 'assembly-worker');
    return startWorker(source, { maxOldGenerationSizeMb: Math.max(64, Math.ceil(this.heapBytes / MB)) });
  }

  protected override threadError(message: string): Error {
    return new AssemblyThreadError(message);
  }

  /** Out of its heap: the case is too large for the budget; anything else, the thread crashed. */
  protected override crashed(err: Error & { code?: string }): Error {
    return err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new AssemblyTooLargeError(this.resources, this.heapBytes) : super.crashed(err);
  }
}

/** The process's assembly thread (assemblies share it: one at a time, like the CPU it stands for). */
export const processAssemblyThread = new AssemblyThread();
