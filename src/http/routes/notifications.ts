import { z } from 'zod';
import { EVENT_TYPES, type EventType } from '../../notify/events';
import { listNotifications, markNotificationRead } from '../../notify/notification-repository';
import {
  DEFAULT_SECRET_OVERLAP_SECONDS,
  getWebhooks,
  MAX_SECRET_OVERLAP_SECONDS,
  reenableWebhook,
  registerWebhook,
  removeWebhook,
  rotateSecret,
  type WebhookServiceDeps,
} from '../../notify/webhook-service';
import { notFound } from '../problem';
import { defineRoute, type AnyRoute } from '../route';
import { refuseInsecureHttpInProduction, type InsecureHttpPolicy } from './insecure-http';
import { pageQuery, uuidParam, wholeNumberParam } from './params';

type NoQuery = Record<string, never>;
const IdParams = z.object({ id: uuidParam('Webhook id must be a UUID') });
const NotificationParams = z.object({ id: wholeNumberParam('id', { min: 1, max: Number.MAX_SAFE_INTEGER, below: 'Notification id must be a positive integer' }) });
const NotificationQuery = z.object({
  caseId: uuidParam('caseId must be a UUID').optional(),
  unread: z.enum(['true', 'false'], { error: 'unread must be true or false' }).optional(),
  ...pageQuery(200, 50),
});
/** A subscriber's HMAC secret, at registration and at rotation. */
const WebhookSecret = z
  .string({ error: 'secret is required' })
  .min(32, { error: 'secret must be at least 32 characters' })
  .max(512, { error: 'secret must be at most 512 characters' });
const WebhookBody = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'url must be an http(s) URL' }),
    secret: WebhookSecret,
    events: z.array(z.enum(EVENT_TYPES, { error: `events must be among ${EVENT_TYPES.join(', ')}` })).min(1, { error: 'events must name at least one event' }),
    allowInsecureHttp: z
      .boolean({ error: 'allowInsecureHttp must be true or false' })
      .optional()
      .meta({ description: 'Permit http: and loopback (local development only; refused in production).' }),
  })
  .strict();
type WebhookBody = z.infer<typeof WebhookBody>;
const overlapError = `overlapSeconds must be a whole number of seconds from 0 to ${MAX_SECRET_OVERLAP_SECONDS}`;
const RotateSecretBody = z
  .object({
    secret: WebhookSecret.meta({ description: 'The new HMAC secret (never returned); signs every event from now on.' }),
    overlapSeconds: z
      .number({ error: overlapError })
      .int({ error: overlapError })
      .min(0, { error: overlapError })
      .max(MAX_SECRET_OVERLAP_SECONDS, { error: overlapError })
      .optional()
      .meta({ description: `Seconds the replaced secret keeps signing beside the new one (default ${DEFAULT_SECRET_OVERLAP_SECONDS}; 0: stops at once, e.g. after a leak).` }),
  })
  .strict();
type RotateSecretBody = z.infer<typeof RotateSecretBody>;

/** Case-manager notifications and webhook subscribers (in production, none with `allowInsecureHttp`). */
export function notificationRoutes(deps: WebhookServiceDeps & { readonly config: InsecureHttpPolicy }): AnyRoute[] {
  return [
    defineRoute<undefined, z.infer<typeof NotificationQuery>, NoQuery>({
      method: 'get',
      path: '/api/notifications',
      tag: 'notifications',
      summary:
        'Notifications for case managers, newest first: records complete, pull partial or failed, SLA target or limit missed, report signed, delivered, delivery failing or in review, transfer requests, disabled webhooks',
      roles: ['case_manager', 'admin'],
      query: NotificationQuery,
      responses: { 200: { description: 'Notifications' } },
      handler: async ({ query }) => {
        const items = await listNotifications(deps.db, { caseId: query.caseId, unread: query.unread === 'true', limit: query.limit, offset: query.offset });
        return {
          status: 200,
          body: { items: items.map((n) => ({ ...n, createdAt: n.createdAt.toISOString(), readAt: n.readAt?.toISOString() ?? null })) },
        };
      },
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof NotificationParams>>({
      method: 'post',
      path: '/api/notifications/:id/read',
      tag: 'notifications',
      summary: "Mark a notification read for the team (case managers share one list): the first reader and time are kept (readBy, readAt)",
      roles: ['case_manager', 'admin'],
      params: NotificationParams,
      responses: { 204: { description: 'Marked read' } },
      handler: async ({ params, principal }) => {
        if (!(await markNotificationRead(deps.db, params.id, principal.sub))) throw notFound(`Notification ${params.id}`);
        return { status: 204 };
      },
    }),
    defineRoute<WebhookBody, NoQuery, NoQuery>({
      method: 'post',
      path: '/api/webhooks',
      tag: 'notifications',
      summary: 'Subscribe a URL to events: JSON POSTs signed X-SOB-Signature: sha256=HMAC(secret, timestamp.body), retried with backoff',
      roles: ['admin'],
      body: WebhookBody,
      responses: {
        201: { description: 'Subscriber registered (the secret is never returned)' },
        400: { description: 'A field is invalid, the URL is refused by the SSRF policy, or allowInsecureHttp is set in production' },
      },
      handler: async ({ body, principal }) => {
        refuseInsecureHttpInProduction(deps.config, body);
        return { status: 201, body: await registerWebhook(deps, { ...body, events: body.events as EventType[] }, principal) };
      },
    }),
    defineRoute<undefined, NoQuery, NoQuery>({
      method: 'get',
      path: '/api/webhooks',
      tag: 'notifications',
      summary: 'Subscribers with their state (active, disabled), failures in a row and last error',
      roles: ['admin'],
      responses: { 200: { description: 'Subscribers' } },
      handler: async () => ({ status: 200, body: { items: await getWebhooks(deps) } }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof IdParams>>({
      method: 'post',
      path: '/api/webhooks/:id/enable',
      tag: 'notifications',
      summary: 'Enable a disabled subscriber again',
      roles: ['admin'],
      params: IdParams,
      responses: { 200: { description: 'Subscriber enabled' } },
      handler: async ({ params }) => ({ status: 200, body: await reenableWebhook(deps, params.id) }),
    }),
    defineRoute<RotateSecretBody, NoQuery, z.infer<typeof IdParams>>({
      method: 'post',
      path: '/api/webhooks/:id/secret',
      tag: 'notifications',
      summary:
        'Rotate a subscriber\'s secret without a gap: the new one signs from now on; the replaced one also signs for overlapSeconds (X-SOB-Signature: sha256=<new>, sha256=<old>)',
      roles: ['admin'],
      params: IdParams,
      body: RotateSecretBody,
      responses: {
        200: { description: 'Secret rotated (no secret is returned)' },
        400: { description: 'secret or overlapSeconds is invalid' },
        404: { description: 'No such subscriber' },
      },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await rotateSecret(deps, params.id, body, principal) }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof IdParams>>({
      method: 'delete',
      path: '/api/webhooks/:id',
      tag: 'notifications',
      summary: 'Remove a subscriber',
      roles: ['admin'],
      params: IdParams,
      responses: { 204: { description: 'Removed' } },
      handler: async ({ params }) => {
        await removeWebhook(deps, params.id);
        return { status: 204 };
      },
    }),
  ] as unknown as AnyRoute[];
}
