import { RATE_LIMIT_ERROR } from 'bullmq';
import { errorFields, withLogContext } from '../src/log';

/**
 * What a failed job leaves in Redis: BullMQ keeps the message of the error its processor threw
 * (`failedReason`) and its stack (`stacktrace`, one per failed attempt) in the job's hash for as long
 * as the job is kept (a week for a failure here). An error's message may quote what it was given — a
 * server's OperationOutcome naming the patient, a family's file name — so the processors' errors are
 * handed to BullMQ as {@link redisSafeError} makes them: the message the log would write, not the
 * error's own.
 */

/** BullMQ's own control-flow errors (a job moved to delayed, or waiting for its children): passed on as they are. */
const CONTROL_FLOW = new Set(['DelayedError', 'WaitingError', 'WaitingChildrenError', 'RateLimitError']);

/** The `at …` lines of a stack: where the error was thrown, in this service's code, without its message. */
function framesOf(err: unknown): string {
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  return stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
}

/** Own properties of the error that {@link redisSafeError} sets itself (from `errorFields`) rather than copies. */
const REWRITTEN = new Set<PropertyKey>(['name', 'message', 'stack', 'logMessage', 'code']);

/**
 * `err` as BullMQ may keep it in Redis: an error of the same class (so `UnrecoverableError` still ends
 * the job at once) with the same other own properties (kept in memory only: a backoff strategy reads
 * a throttled subscriber's `retryAfterMs`), whose name, code and message are the ones the log writes
 * for `err` (`errorFields`: its own `logMessage`, else its text without what it quotes; a Redis
 * reply's code read off its text) and whose stack is that message over `err`'s frames. Its log
 * message is that message, so a `failed` listener logging it writes what it would have written for
 * `err`. BullMQ's control-flow errors are returned as they are.
 */
export function redisSafeError(err: unknown): unknown {
  if (err instanceof Error && (CONTROL_FLOW.has(err.name) || err.message === RATE_LIMIT_ERROR)) return err;
  const { errorName, errorCode, errorMessage } = errorFields(err);
  const safe = Object.create(err instanceof Error ? (Object.getPrototypeOf(err) as object) : Error.prototype) as Error;
  if (err instanceof Error) {
    for (const key of Reflect.ownKeys(err)) {
      const descriptor = Object.getOwnPropertyDescriptor(err, key);
      if (descriptor && !REWRITTEN.has(key)) Object.defineProperty(safe, key, descriptor);
    }
  }
  const frames = framesOf(err);
  const value = (v: unknown): PropertyDescriptor => ({ value: v, writable: true, configurable: true, enumerable: false });
  Object.defineProperties(safe, {
    name: value(errorName),
    message: value(errorMessage),
    stack: value(frames ? `${errorName}: ${errorMessage}\n${frames}` : `${errorName}: ${errorMessage}`),
    logMessage: value(errorMessage),
    ...(errorCode !== undefined ? { code: value(errorCode) } : {}),
  });
  return safe;
}

/** Jobs of this process whose work is under way. */
let running = 0;

/** How many jobs this process is running now (their work begun through {@link runJob}, not yet ended), over all its workers. */
export function runningJobs(): number {
  return running;
}

/**
 * Runs a job's work with the job's id as its log context (`<queue>:<job id>`), counted in
 * {@link runningJobs} while it runs; what the work throws reaches BullMQ as {@link redisSafeError}.
 * Every processor of `queues/` runs through it.
 */
export async function runJob<T>(queue: string, job: { readonly id?: string | undefined }, work: () => Promise<T> | T): Promise<T> {
  running++;
  try {
    return await withLogContext({ jobId: `${queue}:${job.id ?? ''}` }, work);
  } catch (err) {
    throw redisSafeError(err);
  } finally {
    running--;
  }
}
