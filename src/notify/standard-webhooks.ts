/**
 * The [Standard Webhooks](https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
 * headers of an event, sent beside our own `X-SOB-Signature` so that a subscriber can verify events
 * with a Standard Webhooks library (`standardwebhooks` on npm, and its Python, Go, Java, … siblings)
 * instead of code of its own:
 *
 * - `webhook-id`: the event's id (`evt-<n>`, the signed body's `id`): the same on every retry, so the
 *   subscriber de-duplicates by it.
 * - `webhook-timestamp`: Unix seconds when this attempt was sent (the same value as `X-SOB-Timestamp`).
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per signing
 *   secret, space-separated: during a secret rotation's overlap the new secret's first, then the
 *   replaced one's (the spec's way to rotate without a gap).
 *
 * The HMAC key: a secret in the spec's own form, `whsec_` + base64 of 24–64 random bytes, is used as
 * those bytes (what the libraries do with it); any other secret (ours are at least 32 characters an
 * admin chose) is used as its UTF-8 bytes, which a library takes as `new Webhook(secret, { format:
 * 'raw' })` or as `whsec_` + the secret's base64.
 * @packageDocumentation
 */
import { createHmac } from 'node:crypto';

export const STANDARD_ID_HEADER = 'webhook-id';
export const STANDARD_TIMESTAMP_HEADER = 'webhook-timestamp';
export const STANDARD_SIGNATURE_HEADER = 'webhook-signature';

/** `whsec_` + standard base64 (the spec's secret form). */
const STANDARD_SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
/** Key sizes the spec gives for its secrets (bytes). */
const MIN_STANDARD_KEY_BYTES = 24;
const MAX_STANDARD_KEY_BYTES = 64;

/**
 * The HMAC key a Standard Webhooks library derives from `secret`: the decoded bytes of a `whsec_`
 * secret of the spec's size, otherwise the secret's UTF-8 bytes.
 */
export function standardWebhookKey(secret: string): Buffer {
  const base64 = STANDARD_SECRET.exec(secret)?.[1];
  if (base64 !== undefined && base64.length % 4 === 0) {
    const key = Buffer.from(base64, 'base64');
    if (key.length >= MIN_STANDARD_KEY_BYTES && key.length <= MAX_STANDARD_KEY_BYTES) return key;
  }
  return Buffer.from(secret, 'utf8');
}

/** One `v1,<base64>` signature of `<id>.<timestamp>.<body>` with `secret`. */
export function standardWebhookSignature(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', standardWebhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * The three Standard Webhooks headers of one attempt.
 * @param secrets - At least one secret, the current one first (then the replaced one while it overlaps); one listed twice signs once.
 * @param id - The event's id (`evt-<n>`), the same on retries.
 * @param timestamp - Unix seconds of this attempt.
 * @param body - The raw JSON body, exactly as sent.
 */
export function standardWebhookHeaders(secrets: readonly string[], id: string, timestamp: number, body: string): Record<string, string> {
  if (secrets.length === 0) throw new Error('at least one secret is needed to sign a webhook');
  return {
    [STANDARD_ID_HEADER]: id,
    [STANDARD_TIMESTAMP_HEADER]: String(timestamp),
    [STANDARD_SIGNATURE_HEADER]: [...new Set(secrets)].map((secret) => standardWebhookSignature(secret, id, timestamp, body)).join(' '),
  };
}
