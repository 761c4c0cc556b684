import type { Worker } from 'bullmq';

/**
 * Closes a BullMQ worker at shutdown: it takes no new job at once, its running jobs get `graceMs` to
 * finish, and whatever still runs then is let go (its lock no longer renewed, so another worker picks
 * it up once the lock lapses, and it resumes from its committed cursor: every job here is resumable).
 *
 * Not `close()` then `close(true)`: BullMQ keeps the first close's promise and returns it to any later
 * call (`if (this.closing) return this.closing`), so a graceful close started first can never be
 * forced, and shutdown waited for every running job (a pull paging out a slow EHR: minutes) until the
 * container's stop timeout killed the process. `pause()` stops taking jobs and waits for the running
 * ones without starting the close.
 * @returns whether the running jobs finished within `graceMs`
 * @see https://docs.bullmq.io/guide/workers/graceful-shutdown
 */
export async function closeWithGrace(worker: Worker, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    // A pause that fails (Redis gone at shutdown) is closed forced, not left open.
    worker.pause().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  await worker.close(!finished);
  return finished;
}
