/**
 * Worker-thread entry of case assembly: builds the job it is sent (`build-assembly.ts`), keeps the
 * bundle, and hands its text over a part at a time as asked (see `assembly-thread-protocol.ts`).
 * Started by {@link AssemblyThread}.
 *
 * It serialises one part ahead: once a part is handed over, the next is made at once, while the main
 * thread has PostgreSQL store the one just sent, so that the next ask is answered without waiting.
 * Asked one at a time instead, the thread sat idle from each reply until the main thread had started
 * that part's INSERT and asked again (measured with `bench:assemble`, store phase).
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { buildAssembly, parseRawTexts } from './build-assembly';
import type { RawInput } from '../normalize/types';
import type { AssemblyThreadReply, AssemblyThreadRequest } from './assembly-thread-protocol';

const port = parentPort;
if (!port) throw new Error('assembly-worker must run in a worker thread');

/** The raw resources of the assembly being sent, parsed as they come, and the shared count of batches taken. */
let collecting: { readonly id: number; readonly raw: RawInput[]; readonly parsed: Int32Array } | undefined;
/** A batch that failed to parse: the build reports it. */
let collectError: unknown;

/** A built bundle, its text still to be taken, and its next part once made. */
interface HeldBundle {
  readonly id: number;
  readonly parts: Generator<Uint8Array, void, undefined>;
  ahead?: PartAhead;
}

/** The bundle of the assembly under way. */
let held: HeldBundle | undefined;

/** The next part, made before it was asked for (or what making it threw). */
type PartAhead = { readonly ok: true; readonly next: IteratorResult<Uint8Array, void> } | { readonly ok: false; readonly error: unknown };

/** The held bundle's next part: the one made ahead, else made now (throws what making it threw). */
function nextPart(bundle: HeldBundle): IteratorResult<Uint8Array, void> {
  const ahead = bundle.ahead;
  bundle.ahead = undefined;
  if (!ahead) return bundle.parts.next();
  if (!ahead.ok) throw ahead.error;
  return ahead.next;
}

/** Makes the held bundle's next part now, unless it is made, the text is all taken, or the bundle was let go. */
function makeAhead(bundle: HeldBundle): void {
  if (held !== bundle || bundle.ahead) return;
  try {
    bundle.ahead = { ok: true, next: bundle.parts.next() };
  } catch (error) {
    bundle.ahead = { ok: false, error };
  }
}

function failed(id: number, err: unknown): AssemblyThreadReply {
  const error = err instanceof Error ? err : new Error(String(err));
  return { type: 'failed', id, error: { name: error.name, message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) } };
}

function handle(request: AssemblyThreadRequest): AssemblyThreadReply | undefined {
  switch (request.type) {
    case 'begin':
      held = undefined;
      collecting = { id: request.id, raw: [], parsed: new Int32Array(request.parsed) };
      collectError = undefined;
      return undefined;
    case 'raw':
      if (collecting?.id !== request.id) return undefined;
      if (collectError === undefined) {
        try {
          parseRawTexts(request.batch, collecting.raw);
        } catch (err) {
          collectError = err;
        }
      }
      // Taken: the main thread may read the next batch (AssemblyThread.buildNow).
      Atomics.add(collecting.parsed, 0, 1);
      Atomics.notify(collecting.parsed, 0);
      return undefined;
    case 'build': {
      held = undefined;
      const raw = collecting?.id === request.id ? collecting.raw : undefined;
      collecting = undefined;
      if (!raw) return failed(request.id, new Error('the build was not begun'));
      if (collectError !== undefined) return failed(request.id, collectError);
      try {
        const { parts, ...built } = buildAssembly(request.job, raw);
        const bundle: HeldBundle = { id: request.id, parts };
        held = bundle;
        // The first part is made while the main thread begins the version's transaction.
        setImmediate(() => makeAhead(bundle));
        return { type: 'built', id: request.id, built };
      } catch (err) {
        return failed(request.id, err);
      }
    }
    case 'part': {
      if (held?.id !== request.id) return failed(request.id, new Error('no bundle is held for this assembly'));
      const bundle = held;
      try {
        const next = nextPart(bundle);
        if (next.done === true) held = undefined;
        // After this reply is posted: the next part is made while the main thread stores this one.
        else setImmediate(() => makeAhead(bundle));
        return { type: 'part', id: request.id, ...(next.done === true ? {} : { part: next.value }) };
      } catch (err) {
        held = undefined;
        return failed(request.id, err);
      }
    }
    case 'drop':
      if (held?.id === request.id) held = undefined;
      if (collecting?.id === request.id) collecting = undefined;
      return undefined;
  }
}

port.on('message', (request: AssemblyThreadRequest) => {
  const reply = handle(request);
  // A part's bytes are handed over, not copied (bundleJsonByteParts gives each its own ArrayBuffer).
  if (reply) port.postMessage(reply, reply.type === 'part' && reply.part ? [reply.part.buffer as ArrayBuffer] : []);
});
port.postMessage({ type: 'ready' } satisfies AssemblyThreadReply);
