import { RedisConnection, type Worker } from 'bullmq';
import { logger } from '../src/log';
import { withTimeout } from '../src/util/with-timeout';

/**
 * How long a graceful close waits for a worker's connections to be back after a Redis outage. The
 * service's connections try again at least every second (`bullReconnectDelayMs` in `src/redis.ts`);
 * BullMQ's default `retryStrategy`, for connections made otherwise, backs off from 1 s to 20 s after ten
 * failed attempts. Redis answers again (the process's shared connection is ready), so the next attempt
 * succeeds: this covers either.
 */
const RECONNECT_AT_STOP_MS = 25_000;

/**
 * Waits (at most `withinMs`) until one of a worker's connections is ready.
 *
 * ioredis calls a client between two reconnect attempts `reconnecting` (no socket, a retry timer
 * armed). Such a client must not be disconnected: `disconnect()` clears the timer and, with no socket
 * to close, never emits `end`, which BullMQ's graceful close of a worker waits for (its blocking
 * connection): the close then never settles (taskforcesh/bullmq#4656, open for 6.7; the mechanism of
 * #4585). The attempt is not started early (`connect()`): that would leave ioredis's armed timer to fire
 * later and connect the closed client again.
 * @returns whether the connection is ready
 */
async function connectionBack(connection: RedisConnection | undefined, withinMs: number): Promise<boolean> {
  if (connection === undefined) return true;
  const ready = async (): Promise<void> => RedisConnection.waitUntilReady(await connection.client);
  try {
    await withTimeout(ready(), withinMs, () => new Error('redis connection not back'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Closes a BullMQ worker for a stop. With Redis up, gracefully (it takes no new job and waits for its
 * running ones) once its connections are back from an outage: see {@link connectionBack}. A worker
 * whose connections are not back within `reconnectWithinMs`, or any worker while Redis is down, is
 * closed at once without waiting for its jobs (their locks lapse and another worker takes them again:
 * every job is idempotent).
 * @param worker - The worker (BullMQ's Redis backend).
 * @param redisUp - Whether the process's shared Redis connection is ready.
 */
export async function closeWorker(worker: Worker, redisUp: boolean, reconnectWithinMs = RECONNECT_AT_STOP_MS): Promise<void> {
  if (!redisUp) {
    await worker.close(true);
    return;
  }
  const { connection, blockingConnection } = worker.backend;
  const [main, blocking] = await Promise.all([connectionBack(connection, reconnectWithinMs), connectionBack(blockingConnection, reconnectWithinMs)]);
  const back = main && blocking;
  if (!back) logger.warn('worker connection not back at shutdown: closed without waiting for its jobs', { queue: worker.name });
  await worker.close(!back);
}
