/**
 * Signatures of webhook events: `X-SOB-Signature: sha256=<hex>` where hex is the HMAC-SHA256
 * (RFC 2104) of `<X-SOB-Timestamp>.<raw body>` with the subscriber's secret. Signing the timestamp
 * lets a subscriber refuse replays older than a few minutes.
 * @see https://www.rfc-editor.org/rfc/rfc2104
 * @packageDocumentation
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** `sha256=<hex>` of `timestamp.body`. */
export const SIGNATURE_HEADER = 'x-sob-signature';
/** Unix seconds when the event was sent. */
export const TIMESTAMP_HEADER = 'x-sob-timestamp';
/** The event type (also in the signed body, `type`: the header is not signed). */
export const EVENT_HEADER = 'x-sob-event';
/**
 * Id of this delivery (the same on retries). Not signed: subscribers de-duplicate by the signed
 * body's `id` (the event), which a replay cannot change.
 */
export const DELIVERY_HEADER = 'x-sob-delivery';

/** `sha256=<hex>` of `timestamp.body`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a subscriber runs: true when `signature` is ours for this body and timestamp, and the
 * timestamp is within `toleranceSeconds` of `nowSeconds`.
 */
export function verifyWebhook(
  secret: string,
  headers: { signature: string | null | undefined; timestamp: string | null | undefined },
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
