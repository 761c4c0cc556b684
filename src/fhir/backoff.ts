import { mulberry32 } from '../util/mulberry32';
/**
 * Capped exponential backoff with "full jitter": delay = random() × min(cap, base × 2^(retry−1)).
 * Full jitter spreads the retries of many workers that failed together over the whole window
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 */
export interface BackoffOptions {
  /** Delay ceiling for the first retry, ms. */
  readonly baseDelayMs: number;
  /** Cap of the exponential ceiling, ms. */
  readonly maxDelayMs: number;
  /** Uniform [0, 1) source; inject a seeded one in tests. */
  readonly random: () => number;
}

/** Delay before retry number `retry` (1 for the first retry). */
export function fullJitterDelay(retry: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(options.random() * ceiling);
}

/** A small deterministic PRNG (mulberry32) for reproducible jitter in tests. */
export function seededRandom(seed: number): () => number {
  return mulberry32(seed);
}
