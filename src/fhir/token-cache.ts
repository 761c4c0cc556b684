import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script';

/**
 * A Redis cache of one access token, shared by all worker processes, with a lock so that only one
 * process at a time asks the token endpoint (the others wait for the cached token).
 *
 * Stored value: JSON `{ "t": token, "exp": epoch ms, "ren": epoch ms, "s": scope granted }`; key TTL =
 * until `ren`, when the token is to be renewed (its lifetime less the renewal margin). The scope
 * granted travels with the token, so a process that reads a cached token knows what it may do with
 * it without asking the token endpoint (SMART Backend Services token response `scope`,
 * https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5). A value without `s`
 * (written before the scope was kept) is not used: its grant is unknown.
 * Beside the token, `<key>:hold` keeps a `Retry-After` of the token endpoint until it passes
 * ({@link RedisTokenCache.hold}). Tokens sit in Redis in clear text: Redis must be private to the service (as for BullMQ data).
 */
export interface CachedToken {
  readonly token: string;
  /** Epoch ms when the server says it expires. */
  readonly expiresAt: number;
  /** Epoch ms from when it is to be renewed (its own margin: short-lived tokens get a smaller one). */
  readonly renewAt: number;
  /**
   * The scope the token endpoint granted with it (its response's `scope`, or the scope asked for when
   * the response had none: RFC 6749 §5.1, https://www.rfc-editor.org/rfc/rfc6749#section-5.1).
   */
  readonly scope: string;
}

export interface TokenCacheOptions {
  /**
   * How long a fetching process may hold the lock: longer than anything it does while holding it
   * (a token request and its timeout). Default 15 s; `SmartBackendAuth` passes its `tokenLockTtlMs`,
   * the token request's timeout plus a margin.
   */
  readonly lockTtlMs?: number;
  /** Clock. Default Date.now. */
  readonly now?: () => number;
}

/**
 * A hold counts as over this long before its end: the process that got the `Retry-After` waits out
 * exactly that delay before it asks again, and a timer may fire a millisecond or two early.
 */
const HOLD_TIMER_SLACK_MS = 25;

/** Deletes the key only if it still holds `expected` (so we never drop someone else's fresh token or lock). */
const COMPARE_AND_DELETE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/**
 * Writes the hold (ARGV[2], expiring in ARGV[3] ms) unless one until a later or the same time
 * (ARGV[1], epoch ms) is there: one step, so two processes holding at once keep the later.
 */
const HOLD_UNLESS_LATER = new LuaScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local ok, d = pcall(cjson.decode, v)
  if ok and type(d) == 'table' and type(d.u) == 'number' and d.u >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`);

/** Deletes the token only when it is the rejected one. */
const DELETE_IF_TOKEN = new LuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, d = pcall(cjson.decode, v)
if (not ok) or d.t == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/** The token endpoint's own request to come back later (a retryable answer with `Retry-After`). */
export interface TokenEndpointHold {
  /** Epoch ms before which no process asks the token endpoint. */
  readonly until: number;
  /** The HTTP status that asked for it (429 or 5xx). */
  readonly status: number | undefined;
}

export class RedisTokenCache {
  private readonly lockKey: string;
  private readonly holdKey: string;
  private readonly lockTtlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    /** Full Redis key of this token (prefix, endpoint id, client and scope hash). */
    private readonly key: string,
    options: TokenCacheOptions = {},
  ) {
    this.lockKey = `${key}:lock`;
    this.holdKey = `${key}:hold`;
    this.lockTtlMs = options.lockTtlMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The cached token while it need not be renewed: before its `renewAt`, or, for a token stored
   * without one, while it has more than `minValidityMs` left. A token stored without the scope
   * granted is not returned (a fresh one is fetched): what it allows is unknown.
   */
  async get(minValidityMs: number): Promise<CachedToken | undefined> {
    const raw = await this.redis.get(this.key);
    if (raw === null) return undefined;
    let parsed: { t?: unknown; exp?: unknown; ren?: unknown; s?: unknown };
    try {
      parsed = JSON.parse(raw) as { t?: unknown; exp?: unknown; ren?: unknown; s?: unknown };
    } catch {
      return undefined;
    }
    if (typeof parsed.t !== 'string' || typeof parsed.exp !== 'number' || typeof parsed.s !== 'string') return undefined;
    const renewAt = typeof parsed.ren === 'number' ? parsed.ren : parsed.exp - minValidityMs;
    if (this.now() >= renewAt) return undefined;
    return { token: parsed.t, expiresAt: parsed.exp, renewAt, scope: parsed.s };
  }

  /** Stores a token for `ttlMs` (nothing is stored when ttlMs ≤ 0). */
  async set(token: CachedToken, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    const value = { t: token.token, exp: token.expiresAt, ren: token.renewAt, s: token.scope };
    await this.redis.set(this.key, JSON.stringify(value), 'PX', Math.ceil(ttlMs));
  }

  /** Drops the cached token if it is `rejected` (or any token when `rejected` is undefined). */
  async invalidate(rejected?: string): Promise<void> {
    if (rejected === undefined) await this.redis.del(this.key);
    else await DELETE_IF_TOKEN.run(this.redis, [this.key], [rejected]);
  }

  /**
   * Records that the token endpoint asked every caller to come back at `hold.until`, so that no
   * process asks it before then (one waiting on the fetch lock would otherwise ask the moment the
   * lock is released). A later hold never shortens an earlier one.
   */
  async hold(hold: TokenEndpointHold): Promise<void> {
    const ttlMs = Math.ceil(hold.until - this.now());
    if (ttlMs <= 0) return;
    await HOLD_UNLESS_LATER.run(this.redis, [this.holdKey], [hold.until, JSON.stringify({ u: hold.until, st: hold.status ?? null }), ttlMs]);
  }

  /** The token endpoint's hold while it lasts (by this cache's clock), else undefined. */
  async heldUntil(): Promise<TokenEndpointHold | undefined> {
    const raw = await this.redis.get(this.holdKey);
    if (raw === null) return undefined;
    let parsed: { u?: unknown; st?: unknown };
    try {
      parsed = JSON.parse(raw) as { u?: unknown; st?: unknown };
    } catch {
      return undefined;
    }
    if (typeof parsed.u !== 'number' || this.now() >= parsed.u - HOLD_TIMER_SLACK_MS) return undefined;
    return { until: parsed.u, status: typeof parsed.st === 'number' ? parsed.st : undefined };
  }

  /** Tries to take the fetch lock; returns a release function, or undefined when another holder has it. */
  async tryLock(): Promise<(() => Promise<void>) | undefined> {
    const owner = randomUUID();
    const ok = await this.redis.set(this.lockKey, owner, 'PX', this.lockTtlMs, 'NX');
    if (ok !== 'OK') return undefined;
    return async () => {
      await COMPARE_AND_DELETE.run(this.redis, [this.lockKey], [owner]);
    };
  }

  /** True while some process holds the fetch lock. */
  async isLocked(): Promise<boolean> {
    return (await this.redis.exists(this.lockKey)) === 1;
  }

  /** The TTL of the fetch lock, ms. */
  get lockTtl(): number {
    return this.lockTtlMs;
  }
}
