/**
 * Signatures of webhook events: `X-SOB-Signature: sha256=<hex>` where hex is the HMAC-SHA256
 * (RFC 2104) of `<X-SOB-Timestamp>.<raw body>` with the subscriber's secret. Signing the timestamp
 * lets a subscriber refuse replays older than a few minutes.
 *
 * While a rotated secret overlaps the one it replaced (`POST /api/webhooks/:id/secret`), the header
 * lists both signatures, the new secret's first, comma-separated:
 * `X-SOB-Signature: sha256=<new>, sha256=<old>` (as Stripe lists several `v1=` signatures). A
 * subscriber accepts the event when any listed signature is valid for the secret it holds, so it can
 * switch to the new secret at any time during the overlap.
 * @see https://www.rfc-editor.org/rfc/rfc2104
 * @packageDocumentation
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** `sha256=<hex>` of `timestamp.body`; during a secret's overlap `sha256=<new>, sha256=<old>`. */
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

/** The scheme of our signatures inside the header (`sha256=<hex>`). */
const SCHEME = 'sha256=';

/**
 * One signature: `sha256=<hex>` of `timestamp.body` with `secret`.
 * @param secret - The subscriber's HMAC secret.
 * @param timestamp - Unix seconds, as sent in `X-SOB-Timestamp`.
 * @param body - The raw JSON body, exactly as sent.
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `${SCHEME}${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * The `X-SOB-Signature` value for one or several secrets, in the order given (the current secret
 * first, then the previous one while it overlaps), comma-separated; a secret listed twice signs once.
 * @param secrets - At least one secret, the current one first.
 * @param timestamp - Unix seconds, as sent in `X-SOB-Timestamp`.
 * @param body - The raw JSON body, exactly as sent.
 */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  if (secrets.length === 0) throw new Error('at least one secret is needed to sign a webhook');
  return [...new Set(secrets)].map((secret) => signWebhook(secret, timestamp, body)).join(', ');
}

/**
 * What a subscriber runs: true when one of the `sha256=` signatures listed in `signature` (one, or
 * several comma-separated while our secret is being rotated) is ours for this body and timestamp with
 * `secret`, and the timestamp is within `toleranceSeconds` of `nowSeconds`. Every listed signature
 * is compared in constant time; entries of another scheme are ignored.
 * @param secret - The secret the subscriber holds (the new or, during the overlap, the old one).
 * @param headers - `X-SOB-Signature` and `X-SOB-Timestamp` as received.
 * @param body - The raw body as received (before any JSON parsing).
 * @param nowSeconds - The subscriber's clock, Unix seconds.
 * @param toleranceSeconds - How old (or how far ahead) a timestamp may be: older events are replays.
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
  let valid = false;
  for (const entry of headers.signature.split(',')) {
    const candidate = entry.trim();
    if (!candidate.startsWith(SCHEME)) continue;
    const given = Buffer.from(candidate);
    // Lengths differ only for a malformed entry (our hex digest has one length): nothing secret leaks.
    if (given.length === expected.length && timingSafeEqual(expected, given)) valid = true;
  }
  return valid;
}
