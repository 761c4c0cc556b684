import { RedisTokenCache } from '../../src/fhir/token-cache';
import { testRedis, type TestRedis } from './support/redis';

/**
 * The token endpoint's Retry-After kept in Redis beside the token (`<key>:hold`), on real Redis: a
 * later hold is never shortened, also by holds written at the same moment by other processes.
 */
let env: TestRedis;
beforeAll(() => {
  env = testRedis('token-cache');
});
afterAll(() => env.cleanup());

const NOW = 1_700_000_000_000;
let n = 0;
const cache = (): RedisTokenCache => new RedisTokenCache(env.connect(), `${env.prefix}:token:${(n += 1)}`, { now: () => NOW });

it('keeps the later of two holds, whichever comes first', async () => {
  const tokens = cache();
  await tokens.hold({ until: NOW + 30_000, status: 503 });
  await tokens.hold({ until: NOW + 5_000, status: 429 });
  expect(await tokens.heldUntil()).toEqual({ until: NOW + 30_000, status: 503 });
  await tokens.hold({ until: NOW + 60_000, status: 429 });
  expect(await tokens.heldUntil()).toEqual({ until: NOW + 60_000, status: 429 });
});

it('keeps the latest of holds written at the same moment', async () => {
  const key = `${env.prefix}:token:race`;
  const redis = env.connect();
  // All at once, the latest first, their commands interleaved on one connection: a hold that read,
  // then wrote, saw none each time, and the last writer won.
  const untils = [NOW + 90_000, NOW + 10_000, NOW + 40_000, NOW + 20_000, NOW + 5_000];
  await Promise.all(untils.map((until) => new RedisTokenCache(redis, key, { now: () => NOW }).hold({ until, status: 503 })));
  expect(await new RedisTokenCache(redis, key, { now: () => NOW }).heldUntil()).toEqual({ until: NOW + 90_000, status: 503 });
});

it('writes no hold that has already passed', async () => {
  const tokens = cache();
  await tokens.hold({ until: NOW - 1, status: 503 });
  expect(await tokens.heldUntil()).toBeUndefined();
});
