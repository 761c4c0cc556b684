import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { removeQueuePrefixKeys, unlinkKeysWithPrefix } from '../../src/redis';
import { sampleIntake } from '../support/intake';
import { eventually, startTestService } from '../support/service';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * A queue prefix no process uses any more leaves nothing in Redis: its keys are removed, the keys of
 * other prefixes (one that merely begins the same) are not. Real Redis.
 */
const redis = new IORedis(TEST_REDIS_URL);
afterAll(() => redis.disconnect());

const keysOf = async (pattern: string): Promise<string[]> => (await redis.keys(pattern)).sort();

it("removes a prefix's keys and only those, glob characters taken literally", async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const glob = `${prefix}-[a]*?`;
  await redis.mset(`${prefix}:q:1`, '1', `${prefix}:fhir:breaker:x`, '2', `${prefix}x:other`, '3', `${glob}:kept-apart`, '4', `${prefix}-a-b:not-the-glob`, '5');
  try {
    expect(await removeQueuePrefixKeys(TEST_REDIS_URL, prefix)).toBe(2);
    expect(await keysOf(`${prefix}*`)).toEqual([`${prefix}-[a]*?:kept-apart`, `${prefix}-a-b:not-the-glob`, `${prefix}x:other`]);
    expect(await unlinkKeysWithPrefix(redis, `${glob}:`)).toBe(1);
    expect(await keysOf(`${prefix}*`)).toEqual([`${prefix}-a-b:not-the-glob`, `${prefix}x:other`]);
    await expect(unlinkKeysWithPrefix(redis, '')).rejects.toThrow(/needs a prefix/);
  } finally {
    await redis.del(`${prefix}x:other`, `${prefix}-a-b:not-the-glob`, `${glob}:kept-apart`);
  }
});

it('leaves nothing of a stopped test service in Redis (its queues, schedules and client keys)', async () => {
  const svc = await startTestService();
  const prefix = svc.config.queuePrefix;
  try {
    const cm = await svc.token('case_manager');
    expect((await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).status).toBe(201);
    await eventually(() => keysOf(`${prefix}:*`), (keys) => keys.length > 0, 10_000);
  } finally {
    await svc.stop();
  }
  expect(await keysOf(`${prefix}:*`)).toEqual([]);
});
