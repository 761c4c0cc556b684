/**
 * When a webhook event is sent again: BullMQ's exponential backoff (`WEBHOOK_BACKOFF_MS`, doubling per
 * attempt), but never sooner than a throttling subscriber asked. A subscriber answering 429 Too Many
 * Requests or 503 Service Unavailable with `Retry-After` (RFC 9110 §10.2.3, seconds or an HTTP-date)
 * is told to wait that long: sending again after our own shorter backoff only adds to its load, and
 * Standard Webhooks asks senders to honour it. The wait is capped ({@link MAX_RETRY_AFTER_MS}), so a
 * subscriber cannot park an event for days; the attempt still counts toward the event's attempts.
 * @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#delivery-success-and-failure
 * @packageDocumentation
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseRetryAfter } from '../fhir/retry-after';

/** The name of this backoff in a job's `backoff.type` (registered as the worker's `backoffStrategy`). */
export const WEBHOOK_BACKOFF_TYPE = 'webhook';

/** The longest `Retry-After` honoured: 6 hours. */
export const MAX_RETRY_AFTER_MS = 6 * 3600_000;

/** A subscriber throttling: it answered 429 or 503 and asked to be sent the event again after `retryAfterMs`. */
export class SubscriberThrottledError extends Error {
  override readonly name = 'SubscriberThrottledError';
  constructor(
    readonly status: number,
    readonly retryAfterMs: number,
  ) {
    super(`subscriber answered HTTP ${status}, asking to be sent it again in ${Math.ceil(retryAfterMs / 1000)} s (Retry-After)`);
  }
}

/** The throttling a 429/503 answer states, if any (a `Retry-After` that reads as a delay). */
export function throttledBy(status: number, headers: IncomingHttpHeaders, now: number): SubscriberThrottledError | undefined {
  if (status !== 429 && status !== 503) return undefined;
  const wait = parseRetryAfter(headers['retry-after'], now, headers.date);
  return wait === undefined ? undefined : new SubscriberThrottledError(status, Math.min(wait, MAX_RETRY_AFTER_MS));
}

/**
 * The delay before attempt `attemptsMade + 1` (BullMQ's `backoffStrategy`): `delayMs × 2^(attemptsMade − 1)`,
 * as its built-in exponential backoff, or the subscriber's `Retry-After` when longer.
 */
export function webhookRetryDelay(attemptsMade: number, delayMs: number, err: unknown): number {
  const exponential = Math.round(2 ** (attemptsMade - 1) * delayMs);
  return err instanceof SubscriberThrottledError ? Math.max(exponential, err.retryAfterMs) : exponential;
}
