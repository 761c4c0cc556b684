/**
 * Messages between {@link AssemblyThread} and its worker (`assembly-worker.ts`). One assembly at a
 * time: `begin`, then the raw store's resources in `raw` batches as they are read (parsed there as
 * they come; no answer, but the thread counts each batch parsed in `begin`'s `parsed`, so that the
 * main thread reads no further ahead than a few batches), then `build` with the rest of the job answers `built` (the report, the
 * bundle kept in the thread); each `part` then answers the next part of the bundle's text as UTF-8
 * (its ArrayBuffer transferred, not copied; none: the end), and `drop` lets go of what the thread
 * holds for the assembly (its raw batches, its bundle).
 */
import type { AssemblyJob, BuiltSummary, RawText } from './build-assembly';

export type AssemblyThreadRequest =
  /** `parsed`: an Int32Array's memory, shared; element 0 counts the raw batches the thread has taken (parsed or refused). */
  | { readonly type: 'begin'; readonly id: number; readonly parsed: SharedArrayBuffer }
  | { readonly type: 'raw'; readonly id: number; readonly batch: readonly RawText[] }
  | { readonly type: 'build'; readonly id: number; readonly job: AssemblyJob }
  | { readonly type: 'part'; readonly id: number }
  | { readonly type: 'drop'; readonly id: number };

export type AssemblyThreadReply =
  | { readonly type: 'ready' }
  | { readonly type: 'built'; readonly id: number; readonly built: BuiltSummary }
  | { readonly type: 'part'; readonly id: number; readonly part?: Uint8Array }
  | { readonly type: 'failed'; readonly id: number; readonly error: { readonly name: string; readonly message: string; readonly stack?: string } };
