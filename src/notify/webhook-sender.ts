/**
 * Sends one event to one webhook subscriber: JSON body, HMAC-SHA256 signature over timestamp and
 * body (two while a rotated secret overlaps the one it replaced: the new one first), no redirects
 * followed, the same SSRF policy as FHIR endpoints (https only and public addresses only, unless
 * the subscriber was registered with `allowInsecureHttp`, which permits `http:` and loopback for
 * local development). A non-2xx answer or a network error is retried by the queue with backoff; the
 * last failure counts against the subscriber, which is disabled after `disableAfter` failed events
 * in a row and reported to case managers. A 410 Gone is not retried: the subscriber said its URL is
 * gone for good, so it is disabled at once (and reported; an admin enables it again if it was not).
 * A subscriber enabled again is sent only the events raised from that moment on (`enabled_at`).
 * @packageDocumentation
 */
import { FhirNetworkError, type AddressPolicy } from '../fhir';
import { assertAllowedEndpointUrl, insecureHttpAllowed, UrlRefusedError } from '../fhir';
import { HOST_DOES_NOT_RESOLVE } from '../fhir/url-guard';
import { discardBody, HttpTransport } from '../fhir/http-transport';
import type { OutboundProxy } from '../fhir/outbound-proxy';
import type { Database } from '../db/database';
import type { SecretBox } from '../security/secret-box';
import { logger } from '../log';
import { eventMessage } from './events';
import { throttledBy } from './webhook-backoff';
import { insertNotification } from './notification-repository';
import {
  findWebhook,
  findWebhookDelivery,
  previousSecretActive,
  skipDeliveryIfRaisedBeforeEnabled,
  type WebhookDeliveryRow,
  type WebhookRow,
  webhookDelivered,
  webhookDeliveryAttempt,
  webhookEventFailed,
} from './webhook-repository';
import { standardWebhookHeaders } from './standard-webhooks';
import { SUBSCRIBER_BUSY_RECHECK_MS, SubscriberBusyError, type SubscriberSlots } from './webhook-slots';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signatureHeader, TIMESTAMP_HEADER } from './webhook-signature';

/** What sending a webhook needs. */
export interface WebhookSenderDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  readonly timeoutMs: number;
  /** Failed events in a row after which a subscriber is disabled. */
  readonly disableAfter: number;
  /** Address policy override (tests). */
  readonly addressPolicy?: AddressPolicy;
  /** Outbound proxy (`OUTBOUND_PROXY_URL`). */
  readonly proxy?: OutboundProxy;
  /**
   * Production (`NODE_ENV=production`): a subscriber stored with `allowInsecureHttp` (registered before
   * production refused it, or written to the database directly) is held to the policy all the same.
   */
  readonly production?: boolean;
}

/** Thrown when a retry cannot help (URL refused by the policy, secret undecryptable). */
export class PermanentWebhookError extends Error {
  override readonly name = 'PermanentWebhookError';
}

/**
 * Thrown when the subscriber's sealed HMAC secret cannot be opened (another `SECRETS_KEY`, a
 * corrupt or tampered value): no retry can sign the event, so the delivery fails for good and
 * counts against the subscriber (who may re-register a secret).
 */
export class WebhookSecretError extends Error {
  override readonly name = 'WebhookSecretError';
  constructor() {
    super('subscriber secret cannot be decrypted (wrong SECRETS_KEY or corrupt sealed secret)');
  }
}

/** The subscriber's HMAC secret; the crypto error (no detail worth logging) becomes a {@link WebhookSecretError}. */
function openSecret(secrets: SecretBox, hook: { sealedSecret: string; id: string }): string {
  try {
    return secrets.open(hook.sealedSecret, hook.id);
  } catch {
    throw new WebhookSecretError();
  }
}

/**
 * A subscriber answered 410 Gone: the URL is gone and likely for good (RFC 9110 §15.5.11). No retry
 * can help, and the next events would go to the same URL: the subscriber is disabled at once.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.5.11
 */
export class SubscriberGoneError extends Error {
  override readonly name = 'SubscriberGoneError';
  constructor() {
    super('subscriber answered HTTP 410 Gone: its URL is gone for good');
  }
}

/**
 * The secret a rotation replaced, while its overlap lasts at `now`; undefined otherwise. One that
 * cannot be opened is left out (the current secret still signs): no delivery was signed with it
 * since it became unreadable, so no subscriber can be relying on it, and a rotation is how an
 * unreadable secret gets replaced.
 */
function openPreviousSecret(secrets: SecretBox, hook: WebhookRow, now: Date): string | undefined {
  if (!previousSecretActive(hook, now)) return undefined;
  try {
    return secrets.open(hook.previousSealedSecret, hook.id);
  } catch {
    logger.warn('webhook previous secret cannot be decrypted; signing with the current one only', { event: 'webhook.previous_secret_unreadable' });
    return undefined;
  }
}

/**
 * Whether a retry cannot help: a refused URL (scheme, address policy) stays refused, an
 * undecryptable secret stays so, a URL answering 410 Gone is gone; a name that does not resolve may again (a subscriber's DNS
 * mid-change) and is retried like any failure.
 */
function isPermanent(err: unknown): boolean {
  return (err instanceof UrlRefusedError && err.reason !== HOST_DOES_NOT_RESOLVE) || err instanceof WebhookSecretError || err instanceof SubscriberGoneError;
}

/**
 * What an operator reads of a failed attempt (`lastError`): a transport failure (the shared HTTP
 * transport's error, worded for FHIR requests) said as the subscriber's, e.g. "subscriber did not
 * answer: timeout".
 */
function failureMessage(err: unknown): string {
  if (err instanceof FhirNetworkError) return `subscriber did not answer: ${err.reason}`;
  return err instanceof Error ? err.message : 'error';
}

/** TCP/TLS connect timeout of webhook requests (the whole request is bounded by `WEBHOOK_TIMEOUT_MS`). */
const WEBHOOK_CONNECT_TIMEOUT_MS = 3000;

/** One transport per policy (secure / insecure-allowed): keep-alive pools shared by all subscribers. */
export class WebhookTransports {
  private readonly transports = new Map<boolean, HttpTransport>();

  constructor(
    private readonly addressPolicy?: AddressPolicy,
    private readonly proxy?: OutboundProxy,
  ) {}

  get(allowInsecureHttp: boolean): HttpTransport {
    let transport = this.transports.get(allowInsecureHttp);
    if (!transport) {
      transport = new HttpTransport({
        allowInsecureHttp,
        addressPolicy: this.addressPolicy,
        keepAliveTimeoutMs: 5000,
        // A subscriber that does not even accept the connection is given up on soon (its worker slot freed).
        connectTimeoutMs: WEBHOOK_CONNECT_TIMEOUT_MS,
        ...(this.proxy ? { proxy: this.proxy } : {}),
      });
      this.transports.set(allowInsecureHttp, transport);
    }
    return transport;
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.close()));
    this.transports.clear();
  }
}

/** The id of an outbox event as subscribers see it (`evt-<n>`): the body's `id` and the `webhook-id` header. */
export function webhookEventId(outboxId: number): string {
  return `evt-${outboxId}`;
}

/** The JSON body of an event: ids and states only. */
export function webhookBody(event: { id: number; type: string; createdAt: Date; caseId: string | null; data: Record<string, unknown> }): string {
  return JSON.stringify({ id: webhookEventId(event.id), type: event.type, createdAt: event.createdAt.toISOString(), caseId: event.caseId, data: event.data });
}

/**
 * Sends a webhook delivery; resolves when delivered (or nothing to do), throws to be retried.
 * Nothing is sent while the subscriber is disabled (the delivery stays queued), nor, once it is
 * enabled again, for an event raised before that (the delivery is `skipped`).
 * On the last attempt the failure is recorded against the subscriber first; a failure no retry can
 * help ({@link PermanentWebhookError}) is recorded at once, and a 410 Gone disables the subscriber.
 * Only the subscriber's own failures count against it (no answer, a non-2xx answer, a refused URL, an
 * unreadable secret): once it answered 2xx, an error recording the delivery (the database) is thrown
 * as it is, the delivery left `queued` to be sent again (at least once, same body `id`), never
 * counted as a failed event of the subscriber.
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#delivery-success-and-failure
 */
export async function sendWebhook(deps: WebhookSenderDeps, transports: WebhookTransports, deliveryId: string, lastAttempt: boolean, slots?: SubscriberSlots): Promise<string> {
  const delivery = await findWebhookDelivery(deps.db, deliveryId);
  if (!delivery || delivery.state !== 'queued') return delivery?.state ?? 'missing';
  const hook = await findWebhook(deps.db, delivery.webhookId);
  if (!hook || hook.state !== 'active') return 'subscriber-inactive';
  // One subscriber's requests in flight are capped (webhook-slots.ts): a subscriber that never
  // answers holds one worker slot, not all of them. Busy: the job waits, no attempt spent, nothing recorded.
  const release = slots?.tryAcquire(hook.id);
  if (slots !== undefined && release === undefined) throw new SubscriberBusyError(hook.id, Date.now() + SUBSCRIBER_BUSY_RECHECK_MS);
  try {
    return await sendToSubscriber(deps, transports, delivery, hook, lastAttempt);
  } finally {
    release?.();
  }
}

/** {@link sendWebhook} once the delivery is queued and its subscriber active (and, with slots, its slot taken). */
async function sendToSubscriber(deps: WebhookSenderDeps, transports: WebhookTransports, delivery: WebhookDeliveryRow, hook: WebhookRow, lastAttempt: boolean): Promise<string> {
  // Left queued when the subscriber was disabled, queued again once it was enabled: too old to send.
  if (await skipDeliveryIfRaisedBeforeEnabled(deps.db, delivery.id)) return 'skipped';
  const { rows } = await deps.db.query<{ id: number | string; type: string; case_id: string | null; data: Record<string, unknown>; created_at: Date }>(
    'SELECT id, type, case_id, data, created_at FROM outbox WHERE id = $1',
    [delivery.outboxId],
  );
  const event = rows[0];
  if (!event) return 'missing';
  const body = webhookBody({ id: Number(event.id), type: event.type, createdAt: event.created_at, caseId: event.case_id, data: event.data });
  const now = new Date();
  const timestamp = Math.floor(now.getTime() / 1000);
  let status: number | null = null;
  try {
    const secret = openSecret(deps.secrets, hook);
    const previous = openPreviousSecret(deps.secrets, hook, now);
    const signers = previous === undefined ? [secret] : [secret, previous];
    const allowInsecureHttp = insecureHttpAllowed(hook.allowInsecureHttp, deps.production);
    const url = await assertAllowedEndpointUrl(hook.url, { allowInsecureHttp, addressPolicy: deps.addressPolicy });
    // Only the status counts: the subscriber's reply body (an HTML page, any encoding) is not read.
    const res = await transports.get(allowInsecureHttp).stream(
      {
        method: 'POST',
        url,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'second-opinion-bridge-webhooks',
          [SIGNATURE_HEADER]: signatureHeader(signers, timestamp, body),
          [TIMESTAMP_HEADER]: String(timestamp),
          [EVENT_HEADER]: event.type,
          [DELIVERY_HEADER]: delivery.id,
          // The same event for libraries of the Standard Webhooks spec (standard-webhooks.ts).
          ...standardWebhookHeaders(signers, webhookEventId(Number(event.id)), timestamp, body),
        },
        body,
        timeoutMs: deps.timeoutMs,
      },
    );
    status = res.status;
    discardBody(res.body);
    res.done();
    if (res.status === 410) throw new SubscriberGoneError();
    if (res.status < 200 || res.status >= 300) throw throttledBy(res.status, res.headers, Date.now()) ?? new Error(`subscriber answered HTTP ${res.status}`);
  } catch (err) {
    const message = failureMessage(err);
    await webhookDeliveryAttempt(deps.db, delivery.id, status, message);
    const permanent = isPermanent(err);
    if (lastAttempt || permanent) {
      const gone = err instanceof SubscriberGoneError;
      // The event failed, the subscriber's count (and its disabling) and the case managers' notice of
      // it: one transaction, so a crash between them neither leaves a failure uncounted nor a
      // subscriber disabled without anyone told.
      const disabled = await deps.db.transaction(async (tx) => {
        if (!(await webhookEventFailed(tx, delivery.id, hook.id, message, gone ? 1 : deps.disableAfter))) return false;
        const data = { webhookId: hook.id, ...(gone ? { gone: true } : {}) };
        await insertNotification(tx, { outboxId: null, type: 'webhook.disabled', caseId: null, message: eventMessage('webhook.disabled', data), data });
        return true;
      });
      if (disabled) logger.warn('webhook subscriber disabled', { event: 'webhook.disabled', webhookId: hook.id, gone, count: gone ? 1 : deps.disableAfter });
      if (permanent) throw new PermanentWebhookError(message);
    }
    throw err;
  }
  // The subscriber took the event (2xx). What follows is our own bookkeeping: when it fails (the
  // database unreachable, a failover) that is not the subscriber's failure, so it is neither recorded
  // as its error nor counted toward disabling it. The error goes to the queue as it is: the job is
  // retried, or, after its last attempt, the delivery is still `queued` and the stale sweep queues it
  // again. Either way the event is sent once more with the same body `id` (at least once).
  await webhookDeliveryAttempt(deps.db, delivery.id, status, null);
  await webhookDelivered(deps.db, delivery.id, hook.id);
  return 'delivered';
}
