/**
 * Worker-thread entry of case assembly: builds the job it is sent (`build-assembly.ts`), keeps the
 * bundle, and hands its text over a part at a time as asked (see `assembly-thread-protocol.ts`).
 * Started by {@link AssemblyThread}.
 * @packageDocumentation
 */
import { parentPort } from 'node:worker_threads';
import { buildAssembly, parseRawTexts } from './build-assembly';
import type { RawInput } from '../normalize/types';
import type { AssemblyThreadReply, AssemblyThreadRequest } from './assembly-thread-protocol';

const port = parentPort;
if (!port) throw new Error('assembly-worker must run in a worker thread');

/** The raw resources of the assembly being sent, parsed as they come. */
let collecting: { readonly id: number; readonly raw: RawInput[] } | undefined;
/** A batch that failed to parse: the build reports it. */
let collectError: unknown;

/** The bundle of the assembly under way, its text still to be taken. */
let held: { readonly id: number; readonly parts: Generator<Uint8Array, void, undefined> } | undefined;

function failed(id: number, err: unknown): AssemblyThreadReply {
  const error = err instanceof Error ? err : new Error(String(err));
  return { type: 'failed', id, error: { name: error.name, message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) } };
}

function handle(request: AssemblyThreadRequest): AssemblyThreadReply | undefined {
  switch (request.type) {
    case 'begin':
      held = undefined;
      collecting = { id: request.id, raw: [] };
      collectError = undefined;
      return undefined;
    case 'raw':
      if (collecting?.id === request.id && collectError === undefined) {
        try {
          parseRawTexts(request.batch, collecting.raw);
        } catch (err) {
          collectError = err;
        }
      }
      return undefined;
    case 'build': {
      held = undefined;
      const raw = collecting?.id === request.id ? collecting.raw : undefined;
      collecting = undefined;
      if (!raw) return failed(request.id, new Error('the build was not begun'));
      if (collectError !== undefined) return failed(request.id, collectError);
      try {
        const { parts, ...built } = buildAssembly(request.job, raw);
        held = { id: request.id, parts };
        return { type: 'built', id: request.id, built };
      } catch (err) {
        return failed(request.id, err);
      }
    }
    case 'part': {
      if (held?.id !== request.id) return failed(request.id, new Error('no bundle is held for this assembly'));
      try {
        const next = held.parts.next();
        if (next.done === true) held = undefined;
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
