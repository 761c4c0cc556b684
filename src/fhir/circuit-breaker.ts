import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script';

/**
 * A per-endpoint circuit breaker shared by all worker processes (a Redis hash).
 *
 * - **closed**: requests flow. Each logical request that finally fails with a transient failure
 *   (after its retries: network errors, 5xx, 429) counts one failure; `failureThreshold`
 *   consecutive failures within `windowMs` open the circuit. Any success resets the count.
 * - **open**: calls fail fast (`CircuitOpenError` with `retryAt`) until the cool-down ends.
 * - **half-open**: after the cool-down, exactly one caller gets through as the probe (for
 *   `probeLeaseMs`; if the probe's worker dies, another caller becomes the probe after that).
 *   A probe success closes the circuit, a failure re-opens it for another cool-down.
 * - **held** ({@link RedisCircuitBreaker.hold}): the server asked us, with a `Retry-After` longer
 *   than a request may wait (RFC 9110 §10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after),
 *   to come back at a given time: the circuit is open until then whatever its failures, and a
 *   success of a call already under way does not close it early. Then a probe goes first, as above.
 *
 * Times come from the injectable `now()` (passed into the scripts), so tests control the clock.
 * Pattern: https://martinfowler.com/bliki/CircuitBreaker.html
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly endpointId: string;
  /** Consecutive failures that open the circuit. Default 5. */
  readonly failureThreshold?: number;
  /** Failures older than this (since the first in the run) do not count. Default 5 min. */
  readonly windowMs?: number;
  /** How long the circuit stays open. Default 60 s. */
  readonly cooldownMs?: number;
  /** How long one probe may take before another caller may probe. Default 120 s. */
  readonly probeLeaseMs?: number;
  /**
   * How long a "closed, no failures" answer is reused in this process without asking Redis
   * (saves a round trip per request on hot paging loops). A circuit opened by another process is
   * then noticed up to this much later. Default 1000 ms; 0 disables. Measured on the real clock.
   */
  readonly closedCacheMs?: number;
  readonly now?: () => number;
}

/** What the breaker says about a call that is about to start. */
export type Admission =
  | { readonly decision: 'closed'; readonly failures: number }
  | { readonly decision: 'probe' }
  | { readonly decision: 'open'; readonly retryAt: number };

/** Breaker state for progress display. */
export interface CircuitSnapshot {
  readonly state: CircuitState;
  readonly failures: number;
  /** When an open circuit lets a probe through (epoch ms). */
  readonly retryAt?: number;
}

const KEY_TTL_MS = 24 * 3600 * 1000;

// ARGV: now, probe lease ms. Returns {decision, number}: closed → failures, open → retryAt.
const ADMIT = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'openUntil', 'probeUntil')
local state = h[1]
local now = tonumber(ARGV[1])
if not state or state == 'closed' then return {'closed', tonumber(h[2] or '0')} end
if state == 'open' and now < tonumber(h[3]) then return {'open', tonumber(h[3])} end
if state == 'half-open' and now < tonumber(h[4]) then return {'open', tonumber(h[4])} end
redis.call('HSET', KEYS[1], 'state', 'half-open', 'probeUntil', string.format('%.0f', now + tonumber(ARGV[2])))
return {'probe', 0}`);

// ARGV: now, threshold, window ms, cool-down ms, key ttl ms. Returns {state, retryAt}.
const FAILURE = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'windowStart', 'openUntil')
local state = h[1] or 'closed'
local now = tonumber(ARGV[1])
local openUntil = string.format('%.0f', now + tonumber(ARGV[4]))
if state == 'open' then return {'open', tonumber(h[4])} end
if state == 'half-open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', openUntil)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'open', tonumber(openUntil)}
end
local failures = tonumber(h[2] or '0')
local windowStart = tonumber(h[3] or '0')
if failures == 0 or now - windowStart > tonumber(ARGV[3]) then
  failures = 0
  windowStart = now
end
failures = failures + 1
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', failures, 'windowStart', string.format('%.0f', windowStart), 'openUntil', openUntil)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'open', tonumber(openUntil)}
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures, 'windowStart', string.format('%.0f', windowStart))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'closed', 0}`);

// ARGV: now, held until, key ttl ms. Opens the circuit until the later of its open time and ARGV[2].
const HOLD = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'openUntil', 'holdUntil')
local now = tonumber(ARGV[1])
local untilMs = tonumber(ARGV[2])
local openUntil = math.max(tonumber(h[1] or '0'), untilMs)
local holdUntil = math.max(tonumber(h[2] or '0'), untilMs)
redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', string.format('%.0f', openUntil), 'holdUntil', string.format('%.0f', holdUntil))
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(tonumber(ARGV[3]), holdUntil - now + tonumber(ARGV[3]))))
return openUntil`);

// ARGV: now. Closes the circuit unless the server's hold still runs.
const SUCCESS = new LuaScript(`
local hold = tonumber(redis.call('HGET', KEYS[1], 'holdUntil') or '0')
if tonumber(ARGV[1]) < hold then return 0 end
return redis.call('DEL', KEYS[1])`);

export class RedisCircuitBreaker {
  readonly key: string;
  private readonly failureThreshold: number;
  private readonly windowMs: number;
  private readonly cooldownMs: number;
  private readonly probeLeaseMs: number;
  private readonly now: () => number;
  private readonly closedCacheMs: number;
  private closedUntil = 0;
  /** This process's copy of the latest hold (epoch ms), so its own calls stop without a round trip. */
  private heldUntil = 0;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.key = `${options.keyPrefix}fhir:breaker:${options.endpointId}`;
    this.failureThreshold = options.failureThreshold ?? 5;
    this.windowMs = options.windowMs ?? 300_000;
    this.cooldownMs = options.cooldownMs ?? 60_000;
    this.probeLeaseMs = options.probeLeaseMs ?? 120_000;
    this.now = options.now ?? Date.now;
    this.closedCacheMs = options.closedCacheMs ?? 1000;
  }

  /** Asks whether a call may start; in half-open state the first caller becomes the probe. */
  async admit(): Promise<Admission> {
    const held = this.holdingUntil();
    if (held !== undefined) return { decision: 'open', retryAt: held };
    if (this.closedCacheMs > 0 && performance.now() < this.closedUntil) return { decision: 'closed', failures: 0 };
    const [decision, value] = (await ADMIT.run(this.options.redis, [this.key], [this.now(), this.probeLeaseMs])) as [string, number];
    if (decision === 'open') return { decision: 'open', retryAt: Number(value) };
    if (decision === 'probe') return { decision: 'probe' };
    const failures = Number(value);
    if (failures === 0) this.closedUntil = performance.now() + this.closedCacheMs;
    return { decision: 'closed', failures };
  }

  /** A call succeeded (the endpoint answered sensibly): close the circuit, unless the server's hold still runs. */
  async recordSuccess(): Promise<void> {
    await SUCCESS.run(this.options.redis, [this.key], [this.now()]);
  }

  /**
   * The server asked us not to call before `until` (epoch ms; a `Retry-After` beyond what one request
   * may wait): the circuit is open until then in every process (those whose "closed" answer is cached
   * notice within `closedCacheMs`; this one at once, also for calls already admitted that check
   * {@link holdingUntil} before sending), without counting a failure.
   * @returns when the circuit lets a probe through
   */
  async hold(until: number): Promise<number> {
    this.heldUntil = Math.max(this.heldUntil, until);
    this.closedUntil = 0;
    return Number(await HOLD.run(this.options.redis, [this.key], [this.now(), until, KEY_TTL_MS]));
  }

  /** Until when a hold this process knows of keeps calls back (epoch ms), or undefined. */
  holdingUntil(): number | undefined {
    return this.now() < this.heldUntil ? this.heldUntil : undefined;
  }

  /** A call failed transiently after its retries. Returns the state after counting it. */
  async recordFailure(): Promise<{ state: CircuitState; retryAt?: number }> {
    this.closedUntil = 0;
    const [state, retryAt] = (await FAILURE.run(this.options.redis, [this.key], [
      this.now(),
      this.failureThreshold,
      this.windowMs,
      this.cooldownMs,
      KEY_TTL_MS,
    ])) as [string, number];
    return state === 'open' ? { state: 'open', retryAt: Number(retryAt) } : { state: 'closed' };
  }

  /** Current state without changing it (an open circuit past its cool-down reads as half-open). */
  async snapshot(): Promise<CircuitSnapshot> {
    const [state, failures, openUntil, probeUntil] = await this.options.redis.hmget(this.key, 'state', 'failures', 'openUntil', 'probeUntil');
    const count = Number(failures ?? 0);
    if (state === 'open') {
      const until = Number(openUntil);
      return this.now() < until ? { state: 'open', failures: count, retryAt: until } : { state: 'half-open', failures: count };
    }
    if (state === 'half-open') return { state: 'half-open', failures: count, retryAt: Number(probeUntil) };
    return { state: 'closed', failures: count };
  }

  /** Clears the breaker (operator action, tests). */
  async reset(): Promise<void> {
    this.closedUntil = 0;
    this.heldUntil = 0;
    await this.options.redis.del(this.key);
  }
}
