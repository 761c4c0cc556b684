/**
 * One `/readyz` check, as the API (`app.ts`) and a worker's metrics port (`worker-metrics.ts`) run it:
 * bounded by {@link READINESS_TIMEOUT_MS}, answered `ok` or `unavailable`. `/readyz` is public, so the
 * reason a check failed (a driver's message: internal addresses, user names) goes to the log only.
 * @packageDocumentation
 */
import { errorFields, logger } from '../log';

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
export const READINESS_TIMEOUT_MS = 2000;

/** Runs one check: `ok`, or `unavailable` (the reason is logged, never answered). */
export async function runCheck(check: ReadinessCheck): Promise<'ok' | 'unavailable'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), READINESS_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    logger.warn('readiness check failed', { event: `readiness.${check.name}`, ...errorFields(err) });
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}
