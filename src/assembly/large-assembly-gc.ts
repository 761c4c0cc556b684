/**
 * When a large assembly collects garbage on purpose, in the assembly thread and in the main thread
 * that reads its raw rows and stores its parts. V8 lets a heap grow to a multiple of its last live
 * size before a full collection of its own, and a large assembly's peak RSS is that garbage of both
 * heaps meeting the thread's serialisation: collecting at a few chosen points keeps it down for
 * little CPU, spent where the other thread is the one working. A small case has little to gain.
 * @packageDocumentation
 */

/**
 * From this many resources on (raw and built), an assembly counts as large: the thread collects at
 * its two phase boundaries (`build-assembly.ts`) and the main thread once the raw rows are all handed
 * over (`assembly-thread.ts`).
 */
export const COLLECT_GARBAGE_FROM_RESOURCES = 10_000;

/**
 * The main thread collects after every this many bundle parts it receives (~1 MB each). Each part's
 * ArrayBuffer comes from the assembly thread (transferred) and is garbage once PostgreSQL has it, but
 * such memory only counts towards a collection of the main heap when V8 next looks at its external
 * memory: the 50,000-resource `bench:assemble` case held 60–70 MB of spent parts at its peak without
 * these collections and ≤ 35 MB with them.
 */
export const PARTS_PER_MAIN_COLLECTION = 8;
