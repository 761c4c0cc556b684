/**
 * Webhook subscribers (an admin registers them): URL, secret (write-only, sealed at rest), the
 * event types wanted. The URL is checked against the outbound SSRF policy at registration and again
 * at every send (DNS may change).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database';
import { assertAllowedEndpointUrl, FhirClientError, type AddressPolicy } from '../fhir';
import { HttpProblem, notFound } from '../http/problem';
import type { Principal } from '../http/auth';
import { logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import type { EventType } from './events';
import { deleteWebhook, enableWebhook, findWebhook, insertWebhook, listWebhooks, type WebhookRow } from './webhook-repository';

/** What the webhook routes need (an address policy override for tests). */
export interface WebhookServiceDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  readonly webhookAddressPolicy?: AddressPolicy;
}

/** A subscriber as the API shows it (never the secret). */
export function webhookView(w: WebhookRow) {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    allowInsecureHttp: w.allowInsecureHttp,
    state: w.state,
    consecutiveFailures: w.consecutiveFailures,
    lastError: w.lastError,
    disabledAt: w.disabledAt?.toISOString() ?? null,
    createdAt: w.createdAt.toISOString(),
  };
}

/** Registers a subscriber; 400 naming `url` when the SSRF policy refuses it. */
export async function registerWebhook(
  deps: WebhookServiceDeps,
  body: { url: string; secret: string; events: EventType[]; allowInsecureHttp?: boolean },
  actor: Principal,
) {
  const allowInsecureHttp = body.allowInsecureHttp ?? false;
  try {
    await assertAllowedEndpointUrl(body.url, { allowInsecureHttp, addressPolicy: deps.webhookAddressPolicy });
  } catch (err) {
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
  return (await listWebhooks(deps.db)).map(webhookView);
}

/** Removes a subscriber (404 when unknown). */
export async function removeWebhook(deps: Pick<WebhookServiceDeps, 'db'>, id: string): Promise<void> {
  if (!(await deleteWebhook(deps.db, id))) throw notFound(`Webhook ${id}`);
}

/** Re-enables a disabled subscriber (after its owner fixed it). */
export async function reenableWebhook(deps: Pick<WebhookServiceDeps, 'db'>, id: string) {
  if (!(await enableWebhook(deps.db, id))) throw notFound(`Webhook ${id}`);
  return webhookView((await findWebhook(deps.db, id)) as WebhookRow);
}
