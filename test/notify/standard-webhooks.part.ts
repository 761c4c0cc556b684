import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { standardWebhookKey } from '../../src/notify/standard-webhooks';
import { verifyWebhook } from '../../src/notify/webhook-signature';
import { openCaseIn } from '../support/opinion-case';
import { startForFile } from '../support/for-file';
import type { TestService } from '../support/service';
import { startWebhookService, subscribe, transferRequest, type ReceivedWebhook, type WebhookReceiver } from './webhook-support';

/**
 * Every webhook event carries the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) beside `X-SOB-Signature`, and the spec's reference library (`standardwebhooks`
 * on npm) verifies them: with a secret in the spec's `whsec_` form, with any other secret given raw,
 * and with either secret during a rotation's overlap; the id stays the same on a retry. Real service,
 * PostgreSQL, Redis and a real local HTTP subscriber.
 */
let svc: TestService;
let receiver: WebhookReceiver;
let admin: string;
let cm: string;
/** Paths whose first POST is answered 500 (then 204), to see a retry. */
const failFirst = new Set<string>();

const SPEC_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PLAIN_SECRET = 'sob-plain-secret-0123456789abcdef0123456789';
const NEW_SECRET = 'sob-rotated-secret-0123456789abcdef01234567';

startForFile(
  () =>
    startWebhookService('cm-standard-webhooks', (req, res) => {
      const path = req.url ?? '';
      res.statusCode = failFirst.delete(path) ? 500 : 204;
      res.end();
    }),
  (started) => ({ svc, receiver, admin, cm } = started),
);

/** Raises `transfer.requested` on a new case and waits for a POST to `path` about it (the `nth`, from 1). */
async function eventAt(path: string, nth = 1): Promise<ReceivedWebhook[]> {
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  await transferRequest(svc, cm, caseId);
  const about = (r: ReceivedWebhook): boolean => r.path === path && r.body.includes(caseId);
  await receiver.next((r) => about(r) && receiver.received.filter(about).length >= nth);
  return receiver.received.filter(about);
}

const standardHeaders = (hit: ReceivedWebhook): Record<string, string> => ({
  'webhook-id': String(hit.headers['webhook-id']),
  'webhook-timestamp': String(hit.headers['webhook-timestamp']),
  'webhook-signature': String(hit.headers['webhook-signature']),
});

it('signs so that the Standard Webhooks library verifies a whsec_ secret, and names the event by its body id', async () => {
  await subscribe(svc, admin, `${receiver.url}/spec`, SPEC_SECRET);
  const [hit] = await eventAt('/spec');
  if (!hit) throw new Error('no event');
  const headers = standardHeaders(hit);
  const body = JSON.parse(hit.body) as { id: string; type: string };
  expect(headers['webhook-id']).toBe(body.id);
  expect(headers['webhook-id']).toMatch(/^evt-\d+$/);
  // The same instant as our own header; one v1 signature.
  expect(headers['webhook-timestamp']).toBe(hit.headers['x-sob-timestamp']);
  expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  expect(new Webhook(SPEC_SECRET).verify(hit.body, headers)).toEqual(body);
  // Our own header still verifies with the secret as given.
  expect(verifyWebhook(SPEC_SECRET, { signature: hit.headers['x-sob-signature'] as string, timestamp: headers['webhook-timestamp'] }, hit.body)).toBe(true);
  // A changed body, another id or another secret is refused by the library.
  expect(() => new Webhook(SPEC_SECRET).verify(hit.body.replace('transfer.requested', 'report.delivered'), headers)).toThrow(WebhookVerificationError);
  expect(() => new Webhook(SPEC_SECRET).verify(hit.body, { ...headers, 'webhook-id': 'evt-0' })).toThrow(WebhookVerificationError);
  expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(hit.body, headers)).toThrow(WebhookVerificationError);
}, 60_000);

it('signs with any other secret as its raw bytes (library format raw, or whsec_ + its base64)', async () => {
  await subscribe(svc, admin, `${receiver.url}/plain`, PLAIN_SECRET);
  const [hit] = await eventAt('/plain');
  if (!hit) throw new Error('no event');
  const headers = standardHeaders(hit);
  expect(new Webhook(PLAIN_SECRET, { format: 'raw' }).verify(hit.body, headers)).toMatchObject({ type: 'transfer.requested' });
  expect(new Webhook(`whsec_${Buffer.from(PLAIN_SECRET).toString('base64')}`).verify(hit.body, headers)).toMatchObject({ type: 'transfer.requested' });
}, 60_000);

it('lists the new and the replaced secret during a rotation overlap, space-separated, and either verifies', async () => {
  const id = await subscribe(svc, admin, `${receiver.url}/rotated`, PLAIN_SECRET);
  const rotated = await svc.request('POST', `/api/webhooks/${id}/secret`, { token: admin, body: { secret: NEW_SECRET, overlapSeconds: 3600 } });
  expect(rotated.status).toBe(200);
  const [hit] = await eventAt('/rotated');
  if (!hit) throw new Error('no event');
  const headers = standardHeaders(hit);
  expect(headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);
  expect(new Webhook(NEW_SECRET, { format: 'raw' }).verify(hit.body, headers)).toMatchObject({ type: 'transfer.requested' });
  expect(new Webhook(PLAIN_SECRET, { format: 'raw' }).verify(hit.body, headers)).toMatchObject({ type: 'transfer.requested' });
}, 60_000);

it('keeps the webhook-id of an event on its retry, signed afresh', async () => {
  failFirst.add('/retried');
  await subscribe(svc, admin, `${receiver.url}/retried`, SPEC_SECRET);
  const [first, second] = await eventAt('/retried', 2);
  if (!first || !second) throw new Error('no retry');
  expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
  expect(second.body).toBe(first.body);
  expect(new Webhook(SPEC_SECRET).verify(second.body, standardHeaders(second))).toMatchObject({ type: 'transfer.requested' });
}, 60_000);

describe('standardWebhookKey', () => {
  it('decodes a whsec_ secret of the spec size and takes anything else as UTF-8 bytes', () => {
    const bytes = randomBytes(24);
    expect(standardWebhookKey(`whsec_${bytes.toString('base64')}`).equals(bytes)).toBe(true);
    // Too short for the spec's secrets (16 bytes), or not base64: the text itself.
    const short = `whsec_${randomBytes(16).toString('base64')}`;
    expect(standardWebhookKey(short).toString('utf8')).toBe(short);
    expect(standardWebhookKey('whsec_not base64 at all!!').toString('utf8')).toBe('whsec_not base64 at all!!');
    expect(standardWebhookKey(PLAIN_SECRET).toString('utf8')).toBe(PLAIN_SECRET);
  });
});
