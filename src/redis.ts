import IORedis, { type Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. Redis carries work (BullMQ) and short-lived caches only; Postgres holds
 * every case fact, so losing Redis loses no case data.
 */


/**
 * Connection for request paths (readiness, token cache, producers): a command waits at most two
 * seconds for Redis (through a reconnect), then fails, so an API request never hangs on Redis.
 */
export function createClientConnection(url: string, extra: RedisOptions = {}): Redis {
  return new IORedis(url, {
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...extra,
  });
}

export async function pingRedis(redis: Redis): Promise<void> {
  const answer = await redis.ping();
  if (answer !== 'PONG') throw new Error('unexpected PING answer');
}

/** Whether a Redis connection answers commands now (not connecting, reconnecting or closed): nothing is sent. */
export function redisReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

/**
 * Wait before the `times`-th reconnect of a BullMQ connection (ms): 250, 500, 750, then every second.
 * BullMQ's own default grows to 20 s (`max(min(e^times, 20000), 1000)`: ~18 s into an outage it is
 * there), so after a longer outage its workers and queues came back up to 20 s after Redis did; an
 * upload sent meanwhile waited for the reconciler. One refused connection a second per client costs
 * nothing; `test/queues/long-redis-outage.part.ts` measures the recovery (16.7 s before).
 * @see https://github.com/redis/ioredis#auto-reconnect
 */
export function bullReconnectDelayMs(times: number): number {
  return Math.min(250 * times, 1000);
}

/**
 * Connection options for BullMQ from a redis:// URL. Passing options (not a client) lets each
 * Queue and Worker own, and on close release, its connection. They reconnect within a second of
 * Redis answering again ({@link bullReconnectDelayMs}).
 */
export function bullConnectionOptions(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: bullReconnectDelayMs,
  };
}

/** `value` as a literal in a Redis glob pattern (`*`, `?`, `[`, `]` and `\\` escaped). */
function globLiteral(value: string): string {
  return value.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Removes every key that starts with `prefix` (SCAN, then UNLINK a batch at a time): the keys of a
 * queue prefix that is not used again (a test service's, the demo's), its BullMQ queues and its FHIR
 * clients' limiter, breaker and token keys. Never call it on the prefix of a running deployment.
 * @returns how many keys were removed
 */
export async function unlinkKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  if (prefix === '') throw new Error('unlinkKeysWithPrefix needs a prefix: an empty one is every key');
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${globLiteral(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

/**
 * Removes the keys of queue prefix `queuePrefix` (`<prefix>:…`) once no process uses it any more: a
 * test or drill service stopped, the demo finished (each takes a new prefix per run, so its keys would
 * otherwise stay in Redis for good). Opens and closes its own connection (2 s timeouts).
 * @returns how many keys were removed
 */
export async function removeQueuePrefixKeys(redisUrl: string, queuePrefix: string): Promise<number> {
  const redis = createClientConnection(redisUrl, { retryStrategy: () => null });
  try {
    return await unlinkKeysWithPrefix(redis, `${queuePrefix}:`);
  } finally {
    redis.disconnect();
  }
}
