import { verifyWebhook } from '../../src/notify/webhook-signature';
import { validationIssues } from '../support/fhir-validation';
import { openCaseIn } from '../support/opinion-case';
import { startForFile } from '../support/for-file';
import { eventually, type TestService } from '../support/service';
import { startWebhookService, subscribe as subscribeAt, transferRequest as transferRequestOn, type WebhookReceiver } from './webhook-support';

/**
 * Webhook subscribers get JSON events signed with HMAC-SHA256 over timestamp and body; a subscriber
 * that keeps failing is disabled and reported; URLs go through the outbound SSRF policy. The
 * events here come from transfer-of-care requests (a ServiceRequest, a timeline event, a
 * case-manager notification).
 */
let svc: TestService;
let receiver: WebhookReceiver;
let receiverUrl: string;
let received: WebhookReceiver['received'];
let admin: string;
let cm: string;
const SECRET = 'whsec-0123456789abcdef0123456789abcdef';

startForFile(
  () =>
    startWebhookService(
      'cm-hooks',
      (req, res) => {
        if (req.url === '/chatty') {
          // A framework's default page: 200, a large body in an encoding the sender does not decode.
          res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'zstd' });
          res.end(Buffer.alloc(200 * 1024, 0x41));
          return;
        }
        res.statusCode = req.url === '/broken' ? 500 : 204;
        res.end();
      },
      { WEBHOOK_DISABLE_AFTER: '2' },
    ),
  (started) => {
    ({ svc, receiver, admin, cm } = started);
    receiverUrl = receiver.url;
    received = receiver.received;
  },
);

const subscribe = (path: string): Promise<string> => subscribeAt(svc, admin, `${receiverUrl}${path}`, SECRET);
const transferRequest = (caseId: string) => transferRequestOn(svc, cm, caseId);

it('refuses webhook URLs outside the SSRF policy, naming the url field', async () => {
  for (const body of [
    { url: `${receiverUrl}/x`, allowInsecureHttp: false },
    { url: 'http://169.254.169.254/latest/meta-data', allowInsecureHttp: true },
    { url: 'https://10.0.0.5/hook', allowInsecureHttp: false },
  ]) {
    const res = await svc.request('POST', '/api/webhooks', { token: admin, body: { ...body, secret: SECRET, events: ['report.delivered'] } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('url');
  }
  const short = await svc.request('POST', '/api/webhooks', { token: admin, body: { url: 'https://example.org/h', secret: 'short', events: ['report.delivered'] } });
  expect(((await short.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('secret');
});

it('records a transfer request as a valid ServiceRequest, on the timeline, notifies the case manager and signs the webhook', async () => {
  const hook = await subscribe('/ok');
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  const transfer = await transferRequest(caseId);
  expect(transfer.serviceRequest).toMatchObject({ resourceType: 'ServiceRequest', intent: 'proposal' });
  expect(validationIssues(transfer.serviceRequest).filter((i) => i.severity === 'error')).toEqual([]);
  const listed = (await (await svc.request('GET', `/api/cases/${caseId}/transfer-requests`, { token: cm })).json()) as { items: { id: string }[] };
  expect(listed.items.map((t) => t.id)).toEqual([transfer.id]);
  const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string }[] };
  expect(detail.timeline.map((e) => e.type)).toContain('transfer_requested');

  const notes = await eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { id: number; type: string; message: string }[] }).items,
    (items) => items.length > 0,
    30_000,
  );
  expect(notes[0]).toMatchObject({ type: 'transfer.requested', message: 'The family asked to transfer care.' });
  expect((await svc.request('POST', `/api/notifications/${notes[0]?.id}/read`, { token: cm })).status).toBe(204);

  const hit = await eventually(async () => received.find((r) => r.path === '/ok' && r.body.includes(caseId)), (r) => r !== undefined, 30_000);
  if (!hit) throw new Error('no webhook');
  const headers = { signature: hit.headers['x-sob-signature'] as string, timestamp: hit.headers['x-sob-timestamp'] as string };
  expect(headers.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
  expect(verifyWebhook(SECRET, headers, hit.body)).toBe(true);
  expect(verifyWebhook('another-secret-0123456789abcdef0123456789', headers, hit.body)).toBe(false);
  expect(verifyWebhook(SECRET, headers, hit.body.replace(caseId, '00000000-0000-4000-8000-000000000000'))).toBe(false);
  expect(verifyWebhook(SECRET, headers, hit.body, Number(headers.timestamp) + 3600)).toBe(false);
  expect(hit.headers['x-sob-event']).toBe('transfer.requested');
  expect(JSON.parse(hit.body)).toMatchObject({ type: 'transfer.requested', caseId, data: { transferRequestId: transfer.id } });
  // No PHI in the event: ids only.
  expect(hit.body).not.toMatch(/Maya|Referring|moved closer/);
  expect((await svc.request('DELETE', `/api/webhooks/${hook}`, { token: admin })).status).toBe(204);
}, 60_000);

it('retries a failing subscriber, then disables and reports it after failed events in a row', async () => {
  const hook = await subscribe('/broken');
  const caseId = await openCaseIn(svc, cm, 'delivered');
  await transferRequest(caseId);
  await transferRequest(caseId);
  const view = await eventually(
    async () => ((await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: { id: string; state: string; consecutiveFailures: number; lastError: string }[] }).items.find((w) => w.id === hook),
    (w) => w?.state === 'disabled',
    30_000,
  );
  expect(view).toMatchObject({ consecutiveFailures: 2, lastError: expect.stringContaining('500') });
  // Each event was tried WEBHOOK_ATTEMPTS (2) times.
  expect(received.filter((r) => r.path === '/broken')).toHaveLength(4);
  const reports = ((await (await svc.request('GET', '/api/notifications', { token: cm })).json()) as { items: { type: string; data: { webhookId?: string } }[] }).items;
  expect(reports.filter((n) => n.type === 'webhook.disabled' && n.data.webhookId === hook)).toHaveLength(1);
  // A disabled subscriber gets nothing more; enabling it again resets its count.
  await transferRequest(caseId);
  const enabled = await svc.request('POST', `/api/webhooks/${hook}/enable`, { token: admin });
  const enabledView = await enabled.json();
  // Fixed by its owner: it no longer looks broken; the past attempts are kept.
  expect(enabledView).toMatchObject({ state: 'active', consecutiveFailures: 0, lastError: null, disabledAt: null });
  const listed = ((await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: { id: string }[] }).items.find((w) => w.id === hook);
  expect(listed).toEqual(enabledView);
  const attempts = await svc.service.db.query<{ state: string; attempts: number; last_error: string | null }>(
    `SELECT state, attempts, last_error FROM webhook_deliveries WHERE webhook_id = $1 AND state = 'failed'`,
    [hook],
  );
  expect(attempts.rows).toHaveLength(2);
  for (const row of attempts.rows) expect(row).toMatchObject({ attempts: 2, last_error: expect.stringContaining('500') });
}, 60_000);

it('counts a 2xx as delivered whatever the subscriber sends back with it', async () => {
  const hook = await subscribe('/chatty');
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  await transferRequest(caseId);
  // The subscriber has the body before the sender records its answer: wait for the record.
  const rows = await eventually(
    async () =>
      (await svc.service.db.query<{ state: string; last_status: number | null }>('SELECT d.state, d.last_status FROM webhook_deliveries d WHERE d.webhook_id = $1', [hook])).rows,
    (found) => found.length > 0 && found.every((r) => r.state !== 'queued'),
    30_000,
  );
  expect(rows).toEqual([{ state: 'delivered', last_status: 200 }]);
  expect(received.some((r) => r.path === '/chatty' && r.body.includes(caseId))).toBe(true);
  const view = ((await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: { id: string; state: string; consecutiveFailures: number }[] }).items.find((w) => w.id === hook);
  expect(view).toMatchObject({ state: 'active', consecutiveFailures: 0 });
  expect(received.filter((r) => r.path === '/chatty')).toHaveLength(1);
  expect((await svc.request('DELETE', `/api/webhooks/${hook}`, { token: admin })).status).toBe(204);
}, 60_000);

it('retries a subscriber whose host name does not resolve (a DNS change), like any failure', async () => {
  const hook = await subscribe('/dns');
  // Its DNS name stops resolving after registration (registration itself checks the address).
  await svc.service.db.query('UPDATE webhooks SET url = $2 WHERE id = $1', [hook, 'http://no-such-host.invalid/hook']);
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  await transferRequest(caseId);
  const { rows } = await eventually(
    async () => svc.service.db.query<{ state: string; attempts: number }>('SELECT state, attempts FROM webhook_deliveries WHERE webhook_id = $1', [hook]),
    (r) => r.rows[0]?.state === 'failed',
    30_000,
  );
  // WEBHOOK_ATTEMPTS (2) tries, not one: a name that does not resolve may resolve again.
  expect(rows).toEqual([{ state: 'failed', attempts: 2 }]);
  expect((await svc.request('DELETE', `/api/webhooks/${hook}`, { token: admin })).status).toBe(204);
}, 60_000);

it('answers 409 for a transfer request before the case is under review', async () => {
  const caseId = await openCaseIn(svc, cm, 'submitted');
  const res = await svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: cm, body: { reason: 'x' } });
  expect(res.status).toBe(409);
});

it('refuses a transfer request whose text holds a control character FHIR cannot carry, naming the field', async () => {
  const caseId = await openCaseIn(svc, cm, 'in_review');
  const res = await svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: cm, body: { reason: 'Moving to Denver', note: 'Call after 5\u000Bpm' } });
  expect(res.status).toBe(400);
  const body = (await res.json()) as { errors?: { field: string; detail: string }[] };
  expect(body.errors?.map((e) => e.field)).toEqual(['note']);
  expect(body.errors?.[0]?.detail).toMatch(/U\+000B/);
});

it("takes the family portal's upload token for its own case only", async () => {
  const caseId = await openCaseIn(svc, cm, 'in_review');
  const other = await openCaseIn(svc, cm, 'in_review');
  const issued = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string };
  const own = await svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: issued.token, body: { reason: 'We are moving to Denver' } });
  expect(own.status).toBe(201);
  const elsewhere = await svc.request('POST', `/api/cases/${other}/transfer-request`, { token: issued.token, body: { reason: 'x' } });
  expect(elsewhere.status).toBe(403);
  const listing = await svc.request('GET', `/api/cases/${caseId}/transfer-requests`, { token: issued.token });
  expect(listing.status).toBe(403);
});

it("records one transfer request for a portal's resend with the same Idempotency-Key", async () => {
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  const body = { reason: 'The family moved closer to the hospital' };
  const send = (b: unknown, key: string) => svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: cm, body: b, headers: { 'idempotency-key': key } });
  const first = await send(body, 'transfer-1');
  expect(first.status).toBe(201);
  const recorded = (await first.json()) as { id: string; createdAt: string };
  const again = await send(body, 'transfer-1');
  expect(again.status).toBe(201);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(await again.json()).toMatchObject({ id: recorded.id, createdAt: recorded.createdAt });
  // Twice at once under another key: one more request, not two.
  const both = await Promise.all([send(body, 'transfer-2'), send(body, 'transfer-2')]);
  const ids = await Promise.all(both.map(async (r) => ((await r.json()) as { id: string }).id));
  expect(ids[0]).toBe(ids[1]);
  const listed = (await (await svc.request('GET', `/api/cases/${caseId}/transfer-requests`, { token: cm })).json()) as { items: { id: string }[] };
  expect(listed.items.map((t) => t.id).sort()).toEqual([recorded.id, ids[0]].sort());
  // The key reused for another request: 422 naming the header.
  const reused = await send({ reason: 'Another reason' }, 'transfer-1');
  expect(reused.status).toBe(422);
  expect(((await reused.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('Idempotency-Key');
});
