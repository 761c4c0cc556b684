/**
 * A full (mark-compact) garbage collection on demand, without `node --expose-gc` on the command line:
 * the flag is set for a moment, a new context's `gc` taken, the flag cleared again (as
 * jest-leak-detector does). Worker threads cannot be given `--expose-gc` (`execArgv` refuses V8
 * flags), so this is how the assembly thread collects at its phase boundaries.
 * @see https://nodejs.org/docs/latest-v20.x/api/v8.html#v8setflagsfromstringflags
 * @packageDocumentation
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | undefined;

function gcFunction(): () => void {
  if (gcFn) return gcFn;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') gcFn = exposed;
  else {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
    v8.setFlagsFromString('--no-expose-gc');
  }
  return gcFn;
}

/** Runs a full garbage collection of this thread's heap now. */
export function collectGarbage(): void {
  gcFunction()();
}
