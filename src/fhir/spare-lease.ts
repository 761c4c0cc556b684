import type { AcquireResult, RedisRateLimiter } from './rate-limiter';

/**
 * One limiter lease acquired ahead of need, to take the Redis round trip of the next request off
 * the critical path of a paging loop: while page N is being parsed (several ms at `_count=500`),
 * the slot and rate token for page N+1 are already being fetched.
 *
 * The spare counts against the endpoint's limits like any lease (so limits are never exceeded); if
 * nobody takes it within `ttlMs` it is released, at the cost of one unused rate token.
 */
export class SpareLease {
  private pending: Promise<AcquireResult> | undefined;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly limiter: RedisRateLimiter,
    private readonly ttlMs = 50,
  ) {}

  /** Starts acquiring a spare unless one is already held or on its way. */
  prefetch(): void {
    if (this.pending) return;
    const pending = this.limiter.acquire();
    this.pending = pending;
    pending.then(
      (acquired) => {
        if (this.pending !== pending) return; // already taken
        this.expiry = setTimeout(() => {
          if (this.pending !== pending) return;
          this.pending = undefined;
          void acquired.lease.release().catch(() => undefined);
        }, this.ttlMs);
        this.expiry.unref();
      },
      () => {
        if (this.pending === pending) this.pending = undefined;
      },
    );
  }

  /** The spare (held or still being acquired), or undefined. The caller owns it from now on. */
  take(): Promise<AcquireResult> | undefined {
    const pending = this.pending;
    this.pending = undefined;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
    return pending;
  }

  /** Releases a spare that nobody took. */
  async dispose(): Promise<void> {
    const pending = this.take();
    if (!pending) return;
    try {
      await (await pending).lease.release();
    } catch {
      // nothing held
    }
  }
}
