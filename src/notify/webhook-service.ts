/**
 * Webhook subscribers (an admin registers them): URL, secret (write-only, sealed at rest), the
 * event types wanted. The URL is checked against the outbound SSRF policy at registration and again
 * at every send (DNS may change). A secret is rotated without a gap: the one it replaces keeps
 * signing beside it for an overlap, so the subscriber can switch whenever it likes in that time.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database';
import { assertAllowedEndpointUrl, FhirClientError, FhirNetworkError, type AddressPolicy, type HostResolver } from '../fhir';
import { HttpProblem, notFound, urlCheckUnavailable } from '../http/problem';
import type { Principal } from '../http/auth';
import { logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import type { EventType } from './events';
import { deleteWebhook, enableWebhook, findWebhook, insertWebhook, listWebhooks, previousSecretActive, rotateWebhookSecret, type WebhookRow } from './webhook-repository';

/** What the webhook routes need (an address policy and a DNS resolver override for tests). */
export interface WebhookServiceDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  readonly webhookAddressPolicy?: AddressPolicy;
  /** How the URL's host name is looked up at registration (default `dns.lookup`). */
  readonly webhookResolve?: HostResolver;
}

/** Seconds a rotated-out secret keeps signing when the rotation does not say (a day). */
export const DEFAULT_SECRET_OVERLAP_SECONDS = 86_400;
/** The longest overlap a rotation may ask for (a week). */
export const MAX_SECRET_OVERLAP_SECONDS = 604_800;

/**
 * A subscriber as the API shows it (never a secret, current or previous): `previousSecretUntil` is
 * when the secret replaced by the last rotation stops signing, null when none signs any more;
 * `enabledAt` is when it was created or last enabled again, the first moment of the events it is sent.
 */
export function webhookView(w: WebhookRow, now: Date = new Date()) {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    allowInsecureHttp: w.allowInsecureHttp,
    state: w.state,
    consecutiveFailures: w.consecutiveFailures,
    lastError: w.lastError,
    disabledAt: w.disabledAt?.toISOString() ?? null,
    enabledAt: w.enabledAt.toISOString(),
    previousSecretUntil: previousSecretActive(w, now) ? (w.previousSecretUntil?.toISOString() ?? null) : null,
    createdAt: w.createdAt.toISOString(),
  };
}

/**
 * Registers a subscriber; 400 naming `url` when the SSRF policy refuses it, 503 with `Retry-After`
 * naming `url` when its host name could not be looked up for a temporary DNS failure (not a refusal:
 * the same request may pass in a moment).
 */
export async function registerWebhook(
  deps: WebhookServiceDeps,
  body: { url: string; secret: string; events: EventType[]; allowInsecureHttp?: boolean },
  actor: Principal,
) {
  const allowInsecureHttp = body.allowInsecureHttp ?? false;
  try {
    await assertAllowedEndpointUrl(body.url, { allowInsecureHttp, addressPolicy: deps.webhookAddressPolicy, ...(deps.webhookResolve ? { resolve: deps.webhookResolve } : {}) });
  } catch (err) {
    if (err instanceof FhirNetworkError && err.retryable) {
      logger.warn('webhook URL not checked: temporary DNS failure', { code: err.code });
      throw urlCheckUnavailable('url');
    }
    const detail = err instanceof FhirClientError ? `url is refused: ${err.message}` : 'url is refused';
    throw new HttpProblem(400, 'Invalid request', detail, [{ field: 'url', pointer: '#/url', detail }]);
  }
  const id = randomUUID();
  await insertWebhook(deps.db, {
    id,
    url: body.url,
    sealedSecret: deps.secrets.seal(body.secret, id),
    events: [...new Set(body.events)],
    allowInsecureHttp,
    createdBy: actor.sub,
  });
  logger.info('webhook registered', { count: body.events.length });
  return webhookView((await findWebhook(deps.db, id)) as WebhookRow);
}

/** Every subscriber. */
export async function getWebhooks(deps: Pick<WebhookServiceDeps, 'db'>) {
  return (await listWebhooks(deps.db)).map((w) => webhookView(w));
}

/** Removes a subscriber (404 when unknown). */
export async function removeWebhook(deps: Pick<WebhookServiceDeps, 'db'>, id: string): Promise<void> {
  if (!(await deleteWebhook(deps.db, id))) throw notFound(`Webhook ${id}`);
}

/**
 * Re-enables a disabled subscriber (after its owner fixed it); 404 when unknown. It is sent the events
 * raised from now on, none raised while it was disabled; its failures in a row and last error are
 * cleared (its past delivery attempts are kept). Asked of an active subscriber, it only clears those.
 */
export async function reenableWebhook(deps: Pick<WebhookServiceDeps, 'db'>, id: string) {
  if (!(await enableWebhook(deps.db, id))) throw notFound(`Webhook ${id}`);
  return webhookView((await findWebhook(deps.db, id)) as WebhookRow);
}

/**
 * Rotates a subscriber's signing secret (404 when unknown): `secret` signs every event sent from now
 * on; the secret it replaces also signs for `overlapSeconds` (the header then lists both, the new
 * one first), none when 0. Rotating again within an overlap drops the older secret at once. Sealed
 * like the registered secret (AAD = webhook id); logged with the webhook id, never a secret.
 * @param deps - Database and secret box.
 * @param id - The subscriber.
 * @param body - The new secret and the overlap (validated by the route: at least 32 characters, 0 to MAX_SECRET_OVERLAP_SECONDS).
 * @param actor - The admin rotating it (logged).
 */
export async function rotateSecret(
  deps: Pick<WebhookServiceDeps, 'db' | 'secrets'>,
  id: string,
  body: { secret: string; overlapSeconds?: number },
  actor: Principal,
) {
  // The route's schema keeps overlapSeconds within 0..MAX_SECRET_OVERLAP_SECONDS.
  const overlapSeconds = body.overlapSeconds ?? DEFAULT_SECRET_OVERLAP_SECONDS;
  const previousUntil = overlapSeconds > 0 ? new Date(Date.now() + overlapSeconds * 1000) : null;
  if (!(await rotateWebhookSecret(deps.db, id, deps.secrets.seal(body.secret, id), previousUntil))) throw notFound(`Webhook ${id}`);
  logger.info('webhook secret rotated', { event: 'webhook.secret_rotated', webhookId: id, sub: actor.sub });
  return webhookView((await findWebhook(deps.db, id)) as WebhookRow);
}
