import { randomUUID } from 'node:crypto';
import { CaptureTransport } from '../support/capture-log';
import { logger } from '../../src/log';
import { findWebhook, insertWebhook, rotateWebhookSecret } from '../../src/notify/webhook-repository';
import { signWebhook, verifyWebhook } from '../../src/notify/webhook-signature';
import { SecretBox } from '../../src/security/secret-box';
import { openCaseIn } from '../support/opinion-case';
import { openBackendDatabase, type Backend } from '../support/postgres';
import { startForFile } from '../support/for-file';
import { eventually, type TestService } from '../support/service';
import { startWebhookService, subscribe, transferRequest, type ReceivedWebhook, type WebhookReceiver } from './webhook-support';

/**
 * Rotating a subscriber's signing secret without a gap (`POST /api/webhooks/:id/secret`): the new
 * secret signs from then on, and during the overlap the replaced one signs too (`X-SOB-Signature:
 * sha256=<new>, sha256=<old>`), so a subscriber verifying with either accepts every event; after the
 * overlap only the new one signs. Real service, PostgreSQL, Redis and a real local HTTP subscriber.
 */
let svc: TestService;
let receiver: WebhookReceiver;
let admin: string;
let cm: string;
let secrets: SecretBox;

const OLD = 'whsec-old-0123456789abcdef0123456789abcdef';
const NEW = 'whsec-new-0123456789abcdef0123456789abcdef';
const NEWER = 'whsec-newer-0123456789abcdef0123456789abcd';
const ALL_SECRETS = [OLD, NEW, NEWER];
/** Every API answer's text, to show no secret is ever in one. */
const answers: string[] = [];
const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const TWO_SIGNATURES = /^sha256=[0-9a-f]{64}, sha256=[0-9a-f]{64}$/;

startForFile(() => startWebhookService('cm-rotation'), (started) => {
  ({ svc, receiver, admin, cm } = started);
  secrets = new SecretBox(svc.config.secretsKey);
});

/** A call to the API whose answer text is kept for the no-secret check. */
async function api(method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await svc.request(method, route, { token: admin, body });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const rotate = (id: string, body: unknown) => api('POST', `/api/webhooks/${id}/secret`, body);
const fieldOf = (json: Record<string, unknown>): string | undefined => (json.errors as { field: string }[] | undefined)?.[0]?.field;

/** Registers a subscriber of `transfer.requested` at `path` with `secret`; returns its id. */
async function subscriber(path: string, secret: string): Promise<string> {
  return subscribe(svc, admin, `${receiver.url}${path}`, secret);
}

/** Raises `transfer.requested` on a new case and waits for its POST to `path`. */
async function eventAt(path: string): Promise<ReceivedWebhook> {
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  await transferRequest(svc, cm, caseId);
  return receiver.next((r) => r.path === path && r.body.includes(caseId));
}

const headersOf = (hit: ReceivedWebhook) => ({ signature: hit.headers['x-sob-signature'] as string, timestamp: hit.headers['x-sob-timestamp'] as string });

async function stored(id: string) {
  const { rows } = await svc.service.db.query<{ sealed_secret: string; previous_sealed_secret: string | null; previous_secret_until: Date | null }>(
    'SELECT sealed_secret, previous_sealed_secret, previous_secret_until FROM webhooks WHERE id = $1',
    [id],
  );
  const row = rows[0];
  if (!row) throw new Error(`no webhook ${id}`);
  return row;
}

it('signs with the new and the replaced secret during the overlap, new first, and the subscriber verifies with either', async () => {
  const id = await subscriber('/overlap', OLD);
  const before = await stored(id);

  const capture = new CaptureTransport();
  const level = logger.level;
  const others = [...logger.transports];
  logger.level = 'info';
  for (const t of others) t.silent = true;
  logger.add(capture);
  let rotated: { status: number; json: Record<string, unknown> };
  try {
    rotated = await rotate(id, { secret: NEW });
  } finally {
    logger.remove(capture);
    for (const t of others) t.silent = false;
    logger.level = level;
  }
  expect(rotated.status).toBe(200);
  expect(rotated.json).toMatchObject({ id, state: 'active', url: `${receiver.url}/overlap` });
  // Default overlap: a day.
  const until = Date.parse(String(rotated.json.previousSecretUntil));
  expect(Math.abs(until - (Date.now() + 86_400_000))).toBeLessThan(60_000);
  // Logged as a rotation, with the webhook id (on the log allow-list), by whom, and with no secret anywhere in the output.
  const line = capture.lines.find((l) => l.includes('"message":"webhook secret rotated"'));
  expect(line).toBeDefined();
  expect(JSON.parse(line ?? '{}')).toMatchObject({ event: 'webhook.secret_rotated', webhookId: id, sub: 'test-user' });
  for (const secret of ALL_SECRETS) expect(capture.lines.join('\n')).not.toContain(secret);

  // At rest: the new secret sealed (AAD = webhook id), the replaced one moved as it was sealed.
  const row = await stored(id);
  expect(row.previous_sealed_secret).toBe(before.sealed_secret);
  expect(secrets.open(row.sealed_secret, id)).toBe(NEW);
  expect(secrets.open(row.previous_sealed_secret ?? '', id)).toBe(OLD);
  expect(JSON.stringify(row)).not.toMatch(/whsec-/);

  const hit = await eventAt('/overlap');
  const headers = headersOf(hit);
  expect(headers.signature).toMatch(TWO_SIGNATURES);
  const [first, second] = headers.signature.split(', ');
  const ts = Number(headers.timestamp);
  expect(first).toBe(signWebhook(NEW, ts, hit.body));
  expect(second).toBe(signWebhook(OLD, ts, hit.body));
  // A subscriber still on the old secret and one already on the new both accept the event.
  expect(verifyWebhook(NEW, headers, hit.body)).toBe(true);
  expect(verifyWebhook(OLD, headers, hit.body)).toBe(true);
  expect(verifyWebhook(NEWER, headers, hit.body)).toBe(false);
  expect(verifyWebhook(OLD, headers, hit.body.replace('transfer.requested', 'report.delivered'))).toBe(false);

  const listed = await api('GET', '/api/webhooks');
  const view = (listed.json.items as { id: string; previousSecretUntil: string | null }[]).find((w) => w.id === id);
  expect(view?.previousSecretUntil).toBe(rotated.json.previousSecretUntil);
}, 60_000);

it('signs with the new secret only once the overlap has passed', async () => {
  const id = await subscriber('/after', OLD);
  expect((await rotate(id, { secret: NEW, overlapSeconds: 3600 })).status).toBe(200);
  await svc.service.db.query(`UPDATE webhooks SET previous_secret_until = now() - interval '1 second' WHERE id = $1`, [id]);

  const hit = await eventAt('/after');
  const headers = headersOf(hit);
  expect(headers.signature).toMatch(SIGNATURE);
  expect(headers.signature).toBe(signWebhook(NEW, Number(headers.timestamp), hit.body));
  expect(verifyWebhook(NEW, headers, hit.body)).toBe(true);
  expect(verifyWebhook(OLD, headers, hit.body)).toBe(false);
  const listed = await api('GET', '/api/webhooks');
  expect((listed.json.items as { id: string; previousSecretUntil: string | null }[]).find((w) => w.id === id)?.previousSecretUntil).toBeNull();
}, 60_000);

it('stops the replaced secret at once with overlapSeconds 0', async () => {
  const id = await subscriber('/zero', OLD);
  const rotated = await rotate(id, { secret: NEW, overlapSeconds: 0 });
  expect(rotated.status).toBe(200);
  expect(rotated.json.previousSecretUntil).toBeNull();
  expect(await stored(id)).toMatchObject({ previous_sealed_secret: null, previous_secret_until: null });

  const hit = await eventAt('/zero');
  const headers = headersOf(hit);
  expect(headers.signature).toMatch(SIGNATURE);
  expect(verifyWebhook(NEW, headers, hit.body)).toBe(true);
  expect(verifyWebhook(OLD, headers, hit.body)).toBe(false);
}, 60_000);

it('keeps at most two secrets: rotating again during an overlap drops the oldest', async () => {
  const id = await subscriber('/twice', OLD);
  expect((await rotate(id, { secret: NEW })).status).toBe(200);
  expect((await rotate(id, { secret: NEWER, overlapSeconds: 600 })).status).toBe(200);

  const hit = await eventAt('/twice');
  const headers = headersOf(hit);
  expect(headers.signature).toMatch(TWO_SIGNATURES);
  const ts = Number(headers.timestamp);
  expect(headers.signature).toBe(`${signWebhook(NEWER, ts, hit.body)}, ${signWebhook(NEW, ts, hit.body)}`);
  expect(verifyWebhook(NEWER, headers, hit.body)).toBe(true);
  expect(verifyWebhook(NEW, headers, hit.body)).toBe(true);
  expect(verifyWebhook(OLD, headers, hit.body)).toBe(false);
}, 60_000);

it('answers 400 naming secret or overlapSeconds for bad input, and 404 for an unknown subscriber, changing nothing', async () => {
  const id = await subscriber('/bad', OLD);
  const before = await stored(id);
  const cases: [unknown, string][] = [
    [{}, 'secret'],
    [{ secret: 'too-short' }, 'secret'],
    [{ secret: 12345678901234567890123456789012345 }, 'secret'],
    [{ secret: 'x'.repeat(513) }, 'secret'],
    [{ secret: NEW, overlapSeconds: -1 }, 'overlapSeconds'],
    [{ secret: NEW, overlapSeconds: 604_801 }, 'overlapSeconds'],
    [{ secret: NEW, overlapSeconds: 1.5 }, 'overlapSeconds'],
    [{ secret: NEW, overlapSeconds: '3600' }, 'overlapSeconds'],
    [{ secret: NEW, overlapSeconds: null }, 'overlapSeconds'],
  ];
  for (const [body, field] of cases) {
    const res = await rotate(id, body);
    expect({ body, status: res.status, field: fieldOf(res.json) }).toEqual({ body, status: 400, field });
    expect(String(res.json.detail)).toContain(field);
  }
  // The bounds themselves are accepted (checked on another subscriber, to leave this one as it was).
  const other = await subscriber('/bounds', OLD);
  expect((await rotate(other, { secret: NEW, overlapSeconds: 604_800 })).status).toBe(200);
  expect((await rotate(other, { secret: NEWER, overlapSeconds: 0 })).status).toBe(200);

  const unknown = await rotate(randomUUID(), { secret: NEW });
  expect(unknown.status).toBe(404);
  expect((await rotate('not-a-uuid', { secret: NEW })).status).toBe(400);
  expect(await stored(id)).toEqual(before);
  // Admins only.
  const asCm = await svc.request('POST', `/api/webhooks/${id}/secret`, { token: cm, body: { secret: NEW } });
  answers.push(await asCm.text());
  expect(asCm.status).toBe(403);
}, 60_000);

it('still signs with the new secret when the replaced one cannot be opened (it signed nothing since)', async () => {
  const id = await subscriber('/unreadable', OLD);
  expect((await rotate(id, { secret: NEW })).status).toBe(200);
  await svc.service.db.query(`UPDATE webhooks SET previous_sealed_secret = 'v1.garbage' WHERE id = $1`, [id]);

  const hit = await eventAt('/unreadable');
  const headers = headersOf(hit);
  expect(headers.signature).toMatch(SIGNATURE);
  expect(verifyWebhook(NEW, headers, hit.body)).toBe(true);
  // Recorded once the subscriber's answer is back (after the receiver saw the POST).
  const { rows } = await eventually(
    () => svc.service.db.query<{ state: string }>('SELECT state FROM webhook_deliveries WHERE webhook_id = $1', [id]),
    (r) => r.rows[0]?.state !== 'queued',
    10_000,
  );
  expect(rows).toEqual([{ state: 'delivered' }]);
}, 60_000);

it('never shows a secret, current or previous, in any API answer', async () => {
  // Its own registration, rotations and listing; with the answers of every test before it.
  const before = answers.length;
  const id = await subscriber('/shown', OLD);
  expect((await rotate(id, { secret: NEW })).status).toBe(200);
  expect((await rotate(id, { secret: NEWER, overlapSeconds: 60 })).status).toBe(200);
  expect((await api('GET', '/api/webhooks')).status).toBe(200);
  expect((await api('POST', `/api/webhooks/${id}/enable`)).status).toBe(200);
  expect(answers.length).toBe(before + 4);
  for (const text of answers) {
    for (const secret of ALL_SECRETS) expect(text).not.toContain(secret);
    // No member named like a secret either (`previousSecretUntil` is a time, not a secret).
    expect(text).not.toMatch(/"[A-Za-z]*(?:[sS]ecret|[sS]ealed[A-Za-z]*)"\s*:/);
  }
});

/** The repository statement and migration 031 on both backends the service runs on. */
describe.each<Backend>(['postgres', 'pglite'])('rotateWebhookSecret (%s)', (backend) => {
  it('moves the current secret to previous with its end, drops it with no overlap, and refuses a half pair', async () => {
    const { db, close } = await openBackendDatabase(backend);
    try {
      const id = randomUUID();
      await insertWebhook(db, { id, url: 'https://example.org/h', sealedSecret: 'sealed-a', events: ['case.created'], allowInsecureHttp: false, createdBy: 'test' });
      expect(await findWebhook(db, id)).toMatchObject({ sealedSecret: 'sealed-a', previousSealedSecret: null, previousSecretUntil: null });

      const until = new Date(Date.now() + 60_000);
      expect(await rotateWebhookSecret(db, id, 'sealed-b', until)).toBe(true);
      expect(await findWebhook(db, id)).toMatchObject({ sealedSecret: 'sealed-b', previousSealedSecret: 'sealed-a', previousSecretUntil: until });
      expect(await rotateWebhookSecret(db, id, 'sealed-c', until)).toBe(true);
      expect(await findWebhook(db, id)).toMatchObject({ sealedSecret: 'sealed-c', previousSealedSecret: 'sealed-b' });
      expect(await rotateWebhookSecret(db, id, 'sealed-d', null)).toBe(true);
      expect(await findWebhook(db, id)).toMatchObject({ sealedSecret: 'sealed-d', previousSealedSecret: null, previousSecretUntil: null });
      expect(await rotateWebhookSecret(db, randomUUID(), 'sealed-e', until)).toBe(false);

      await expect(db.query(`UPDATE webhooks SET previous_sealed_secret = 'x' WHERE id = $1`, [id])).rejects.toThrow(/webhooks_previous_secret_pair/);
    } finally {
      await close();
    }
  });
});
