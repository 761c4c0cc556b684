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

/**
 * Connection options for BullMQ from a redis:// URL. Passing options (not a client) lets each
 * Queue and Worker own, and on close release, its connection.
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
  };
}
