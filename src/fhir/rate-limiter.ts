import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FhirNetworkError, RequestNotSentError } from './errors';
import { LuaScript } from './lua-script';
import { abortableSleep } from '../util/abortable-sleep';

/**
 * Per-endpoint politeness limits held across ALL worker processes in Redis:
 *
 * - **Concurrency**: a sorted-set semaphore. Members are lease ids scored by their expiry time;
 *   acquiring first evicts expired leases, so a crashed worker frees its slot after `leaseMs`.
 *   Holders renew their lease every `leaseMs / 3` while the request runs.
 * - **Rate**: GCRA (generic cell rate algorithm, a token bucket kept as one "theoretical arrival
 *   time" number). Emission interval = 1000 / maxRequestsPerSecond; `burst` requests may start
 *   back to back, after which starts are spaced by the interval.
 *
 * Both run in one Lua script on Redis's clock (`TIME`), so processes with skewed clocks agree and
 * the common case costs one round trip. Waiting is by sleeping for the computed GCRA delay, and by
 * polling with capped backoff for a concurrency slot (woken early when a slot is freed in this
 * process): never a busy spin.
 */
export interface EndpointLimits {
  readonly maxRequestsPerSecond: number;
  readonly maxConcurrency: number;
}

export interface RateLimiterOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly endpointId: string;
  readonly limits: EndpointLimits;
  /** Requests that may start back to back. Default 1 (strict spacing). */
  readonly burst?: number;
  /** Concurrency lease lifetime without renewal. Default 60 s. */
  readonly leaseMs?: number;
  /** Longest pause between polls for a concurrency slot. Default 50 ms. */
  readonly maxPollMs?: number;
  /** Give up waiting after this long (a retryable error). Default 10 min. */
  readonly maxWaitMs?: number;
  /**
   * Whether a server's `Retry-After` holds every request to the endpoint ({@link RedisRateLimiter.holdRate}).
   * Default true; off only where a test simulates the client's sleeps (the hold is real time).
   */
  readonly holdOnRetryAfter?: boolean;
}

/** A held concurrency slot. Release it in `finally`. */
export interface Lease {
  release(): Promise<void>;
}

/** How long an acquire waited, per limiter (0 when it did not have to wait at all). */
export interface AcquireResult {
  readonly lease: Lease;
  /** Time spent waiting for a free slot (0 when one was free at once). */
  readonly waitedForConcurrencyMs: number;
  /** Time spent waiting for the rate limit after getting the slot (0 when not limited). */
  readonly waitedForRateMs: number;
}

// KEYS[1] semaphore zset, KEYS[2] GCRA TAT. ARGV: lease id, max concurrency, lease ms,
// emission interval ms, burst tolerance ms, take slot (1/0).
// `now` is in ms with µs fraction (Redis TIME), so high rates are not rounded to whole ms.
// Lua formats big numbers with 14 significant digits; string.format keeps the precision.
// Returns {state, waitMs}: 0 = no slot, 1 = slot held but rate must wait, 2 = granted.
const ACQUIRE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local leaseMs = tonumber(ARGV[3])
if ARGV[6] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {0, 0} end
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + leaseMs), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], leaseMs * 2)
end
local interval = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local allowAt = tat - tonumber(ARGV[5])
if now < allowAt then return {1, math.ceil(allowAt - now)} end
local nextTat = tat + interval
redis.call('SET', KEYS[2], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
return {2, 0}`);

// KEYS[1] GCRA TAT. ARGV: wait ms, burst tolerance ms. Moves the TAT so that no request is allowed
// before now + wait (never earlier than it already was).
const HOLD_RATE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local wanted = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
if wanted > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.3f', wanted), 'PX', math.ceil(wanted - now) + 1000)
end
return 1`);

// KEYS[1] semaphore; ARGV lease id, lease ms. Extends a live lease.
const RENEW = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1`);

export class RedisRateLimiter {
  private readonly semKey: string;
  private readonly rateKey: string;
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private readonly leaseMs: number;
  private readonly maxPollMs: number;
  private readonly maxWaitMs: number;
  private readonly localWaiters = new Set<() => void>();

  constructor(private readonly options: RateLimiterOptions) {
    const { maxRequestsPerSecond, maxConcurrency } = options.limits;
    if (!(maxRequestsPerSecond > 0) || !(maxConcurrency >= 1)) throw new Error('endpoint limits must be positive');
    this.semKey = `${options.keyPrefix}fhir:limit:${options.endpointId}:inflight`;
    this.rateKey = `${options.keyPrefix}fhir:limit:${options.endpointId}:tat`;
    this.intervalMs = 1000 / maxRequestsPerSecond;
    this.toleranceMs = this.intervalMs * (Math.max(1, options.burst ?? 1) - 1);
    this.leaseMs = options.leaseMs ?? 60_000;
    this.maxPollMs = options.maxPollMs ?? 50;
    this.maxWaitMs = options.maxWaitMs ?? 600_000;
  }

  /**
   * Waits for a concurrency slot and then for the rate limit; returns the held slot.
   * @param stopBeforeSend - When it fires, the wait ends with {@link RequestNotSentError} (a slot
   *   already taken is given back): its caller is stopping and will send nothing.
   */
  async acquire(stopBeforeSend?: AbortSignal): Promise<AcquireResult> {
    const leaseId = randomUUID();
    const started = performance.now();
    let slotAt: number | undefined;
    let waitedForSlot = false;
    let waitedForRate = false;
    let pause = 2;
    for (;;) {
      if (stopBeforeSend?.aborted) {
        if (slotAt !== undefined) await this.drop(leaseId);
        throw new RequestNotSentError(this.options.endpointId);
      }
      const [state, waitMs] = await this.script(leaseId, slotAt === undefined);
      if (state !== 0) slotAt ??= performance.now();
      if (state === 2) {
        const end = performance.now();
        return {
          lease: this.hold(leaseId),
          waitedForConcurrencyMs: waitedForSlot ? Math.round((slotAt ?? end) - started) : 0,
          waitedForRateMs: waitedForRate ? Math.round(end - (slotAt ?? end)) : 0,
        };
      }
      if (performance.now() - started > this.maxWaitMs) {
        if (slotAt !== undefined) await this.drop(leaseId);
        throw new FhirNetworkError('timed out waiting for the endpoint rate limit', 'LIMITER_TIMEOUT', true, true);
      }
      if (state === 1) {
        waitedForRate = true;
        // Only time frees the rate: a slot given back here does not.
        await abortableSleep(Math.max(1, Math.ceil(waitMs)), stopBeforeSend);
      } else {
        waitedForSlot = true;
        await this.waitForSlot(pause, stopBeforeSend);
        pause = Math.min(pause * 2, this.maxPollMs);
      }
    }
  }

  /**
   * Lets no request to the endpoint start, from any process, for `waitMs` from now (a later hold
   * already in place stands): the wait a server's `Retry-After` names is for the client, not only for
   * the request it refused (RFC 6585 §4, RFC 9110 §10.2.3). Requests then wait in {@link acquire} as
   * for the rate limit.
   */
  async holdRate(waitMs: number): Promise<void> {
    if (this.options.holdOnRetryAfter === false) return;
    await HOLD_RATE.run(this.options.redis, [this.rateKey], [Math.max(0, Math.ceil(waitMs)), this.toleranceMs]);
  }

  /** Current number of leases held across processes (expired ones included until next acquire). */
  async inFlight(): Promise<number> {
    return this.options.redis.zcard(this.semKey);
  }

  private async script(leaseId: string, takeSlot: boolean): Promise<[number, number]> {
    const result = (await ACQUIRE.run(this.options.redis, [this.semKey, this.rateKey], [
      leaseId,
      this.options.limits.maxConcurrency,
      this.leaseMs,
      this.intervalMs,
      this.toleranceMs,
      takeSlot ? '1' : '0',
    ])) as [number, number];
    return [Number(result[0]), Number(result[1])];
  }

  private hold(leaseId: string): Lease {
    const renew = setInterval(() => {
      RENEW.run(this.options.redis, [this.semKey], [leaseId, this.leaseMs]).catch(() => undefined);
    }, Math.max(10, Math.floor(this.leaseMs / 3)));
    renew.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        await this.drop(leaseId);
      },
    };
  }

  private async drop(leaseId: string): Promise<void> {
    try {
      await this.options.redis.zrem(this.semKey, leaseId);
    } finally {
      for (const wake of this.localWaiters) wake();
    }
  }

  /**
   * The pause between polls for a concurrency slot: `ms`, or less, until a slot is freed in this
   * process (worth asking Redis again at once) or `stop` fires (the caller sends nothing).
   */
  private async waitForSlot(ms: number, stop: AbortSignal | undefined): Promise<void> {
    const freed = new AbortController();
    const wake = (): void => freed.abort();
    this.localWaiters.add(wake);
    try {
      await abortableSleep(ms, stop, freed.signal);
    } finally {
      this.localWaiters.delete(wake);
    }
  }
}
