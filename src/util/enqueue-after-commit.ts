import { errorFields, logger } from '../log';
import { withTimeout } from './with-timeout';

/**
 * Enqueueing work after its change committed, without letting Redis decide the answer.
 *
 * PostgreSQL is the system of record: once a transaction committed, the request succeeded, whatever
 * Redis does. A BullMQ producer can hang (a `Queue` whose connection never came up waits for it
 * before any command: Redis down when the process started) or fail (~0.7 s, Redis gone after start);
 * neither may turn a committed change into a hung request or a 500 (whose retry would then get a
 * 409). So the enqueue is given at most {@link AFTER_COMMIT_ENQUEUE_TIMEOUT_MS}; past it, or on an
 * error, it is logged (ids only, no PHI) and left to the sweep that re-creates the job from
 * PostgreSQL. A call left running past the timeout may still add its job once Redis answers (job ids
 * are derived, so the sweep adding it too adds nothing). Use it only where such a sweep exists.
 */
const AFTER_COMMIT_ENQUEUE_TIMEOUT_MS = 3000;

/** What {@link enqueueAfterCommit} logs when the work is not queued in time. */
export interface AfterCommitEnqueueOptions {
  /** What was to be queued, for the log (no PHI): e.g. `opinion deliveries`. */
  readonly what: string;
  /** The sweep that re-creates the job from PostgreSQL (named in the log): e.g. `the notify stale sweep`. */
  readonly sweep: string;
  /** Ids to log beside it (no PHI: ids, counts). */
  readonly ids?: Readonly<Record<string, string | number>>;
}

/**
 * Runs `enqueue` (BullMQ adds of work already committed in PostgreSQL) for at most
 * {@link AFTER_COMMIT_ENQUEUE_TIMEOUT_MS}. Never throws: on a timeout or an error it logs a warning
 * naming the sweep that will queue the work.
 * @param enqueue - The adds (job ids derived from the rows, so a later re-add is a no-op).
 * @param options - What is queued and which sweep re-creates it.
 */
export async function enqueueAfterCommit(enqueue: () => Promise<unknown>, options: AfterCommitEnqueueOptions): Promise<void> {
  // A failure after the timeout (the add left running) is the sweep's business (withTimeout drops it).
  try {
    await withTimeout(Promise.resolve().then(enqueue), AFTER_COMMIT_ENQUEUE_TIMEOUT_MS, () => new Error(`queue did not answer within ${AFTER_COMMIT_ENQUEUE_TIMEOUT_MS} ms`));
  } catch (err) {
    logger.warn(`${options.what} not queued yet; ${options.sweep} re-queues it`, { event: 'enqueue.deferred', ...options.ids, ...errorFields(err) });
  }
}
