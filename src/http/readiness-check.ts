/**
 * One `/readyz` check, as the API (`app.ts`) and a worker's metrics port (`worker-metrics.ts`) run it:
 * bounded by {@link READINESS_TIMEOUT_MS}, answered `ok` or `unavailable`. `/readyz` is public, so the
 * reason a check failed (a driver's message: internal addresses, user names) goes to the log only.
 * @packageDocumentation
 */
import { errorFields, logger } from '../log';
import { withTimeout } from '../util/with-timeout';

export interface ReadinessCheck {
  readonly name: string;
  readonly check: () => Promise<void>;
  /**
   * A dependency the API keeps serving without (Redis: queues and caches): when it fails, `/readyz`
   * still answers 200 `ready`, the check `unavailable` and its name under `degraded`.
   */
  readonly optional?: boolean;
}

/** Longest a check may take before it counts as `unavailable` (ms). */
const READINESS_TIMEOUT_MS = 2000;

/** Runs one check: `ok`, or `unavailable` (the reason is logged, never answered). */
async function runCheck(check: ReadinessCheck): Promise<'ok' | 'unavailable'> {
  try {
    await withTimeout(check.check(), READINESS_TIMEOUT_MS, () => new Error('timed out'));
    return 'ok';
  } catch (err) {
    logger.warn('readiness check failed', { event: `readiness.${check.name}`, ...errorFields(err) });
    return 'unavailable';
  }
}

/** The `/readyz` answer: its HTTP status and JSON body. */
export interface ReadinessAnswer {
  readonly status: 200 | 503;
  readonly body: {
    readonly status: 'ready' | 'unavailable';
    /** The failing checks that are not optional, named. */
    readonly detail?: string;
    readonly checks: Readonly<Record<string, 'ok' | 'unavailable'>>;
    /** The optional checks that fail (the answer is still 200 `ready`). */
    readonly degraded?: readonly string[];
  };
}

/**
 * Runs every check at once and answers: 200 `ready` unless a check that is not optional fails (then
 * 503 `unavailable`, naming those in `detail`); each check's state under `checks`, the failing
 * optional ones under `degraded`.
 */
export async function readinessAnswer(checks: readonly ReadinessCheck[]): Promise<ReadinessAnswer> {
  const results = await Promise.all(checks.map(async (c) => [c, await runCheck(c)] as const));
  const failing = results.filter(([, state]) => state !== 'ok').map(([c]) => c);
  const down = failing.filter((c) => c.optional !== true).map((c) => c.name);
  const degraded = failing.filter((c) => c.optional === true).map((c) => c.name);
  return {
    status: down.length === 0 ? 200 : 503,
    body: {
      status: down.length === 0 ? 'ready' : 'unavailable',
      ...(down.length > 0 ? { detail: `Not answering: ${down.join(', ')}` } : {}),
      checks: Object.fromEntries(results.map(([c, state]) => [c.name, state])),
      ...(degraded.length > 0 ? { degraded } : {}),
    },
  };
}
