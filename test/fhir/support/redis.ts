import { randomBytes } from 'node:crypto';
import IORedis, { type Redis } from 'ioredis';
import { unlinkKeysWithPrefix } from '../../../src/redis';
import { TEST_REDIS_URL } from '../../support/redis-url';

/** A unique key prefix per test file, and connections that are cleaned up afterwards. */
export interface TestRedis {
  readonly prefix: string;
  /** A new connection (one per simulated worker process). */
  connect(): Redis;
  /** Deletes every key under the prefix and closes the connections. */
  cleanup(): Promise<void>;
}

export function testRedis(name: string): TestRedis {
  const prefix = `sobtest:fhir:${name}:${randomBytes(4).toString('hex')}:`;
  const connections: Redis[] = [];
  return {
    prefix,
    connect() {
      const redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
      connections.push(redis);
      return redis;
    },
    async cleanup() {
      const redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
      connections.push(redis);
      await unlinkKeysWithPrefix(redis, prefix);
      await Promise.all(connections.map((c) => (c.status === 'end' ? undefined : c.quit().catch(() => c.disconnect()))));
    },
  };
}
