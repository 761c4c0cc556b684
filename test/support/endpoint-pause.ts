import IORedis from 'ioredis';
import { RedisCircuitBreaker } from '../../src/fhir';
import type { TestService } from './service';

/**
 * Opens an endpoint's circuit breaker for `ms`, as a run of failures does: every worker's breaker
 * for the endpoint reads the same Redis hash, so the pause holds for the service's jobs.
 * @returns a function that closes the breaker again (the endpoint back, as after a good probe)
 */
export async function pauseEndpoint(svc: TestService, endpointId: string, ms: number): Promise<() => Promise<void>> {
  const breakerOf = (redis: IORedis): RedisCircuitBreaker =>
    new RedisCircuitBreaker({ redis, keyPrefix: `${svc.config.queuePrefix}:fhir:`, endpointId, failureThreshold: 1, cooldownMs: ms });
  const redis = new IORedis(svc.config.redisUrl);
  try {
    const breaker = breakerOf(redis);
    await breaker.reset();
    const { state } = await breaker.recordFailure();
    if (state !== 'open') throw new Error(`the breaker of endpoint ${endpointId} did not open (${state})`);
  } finally {
    redis.disconnect();
  }
  return async () => {
    const again = new IORedis(svc.config.redisUrl);
    try {
      await breakerOf(again).reset();
    } finally {
      again.disconnect();
    }
  };
}
