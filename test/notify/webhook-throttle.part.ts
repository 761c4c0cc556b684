import { MAX_RETRY_AFTER_MS, SubscriberThrottledError, throttledBy, webhookRetryDelay } from '../../src/notify/webhook-backoff';
import { openCaseIn } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';
import { startWebhookReceiver, subscribe, transferRequest, type WebhookReceiver } from './webhook-support';

/**
 * A subscriber that answers 429 Too Many Requests (or 503) with `Retry-After` is throttling: it is sent
 * the event again no sooner than it asked, not after the sender's own short backoff (Standard
 * Webhooks, "Delivery success and failure": honour Retry-After; RFC 9110 §10.2.3). Real service,
 * PostgreSQL, Redis and a loopback subscriber.
 */
let svc: TestService;
let receiver: WebhookReceiver;
/** When each POST to /throttled arrived (ms), by case id in its body. */
const arrivals = new Map<string, number[]>();

beforeAll(async () => {
  receiver = await startWebhookReceiver((req, res) => {
    const hit = receiver.received[receiver.received.length - 1];
    const caseId = /"caseId":"([^"]+)"/.exec(hit?.body ?? '')?.[1] ?? '';
    const times = arrivals.get(caseId) ?? [];
    times.push(Date.now());
    arrivals.set(caseId, times);
    if (req.url === '/throttled' && times.length === 1) {
      res.writeHead(429, { 'retry-after': '2' });
      res.end();
      return;
    }
    res.statusCode = 204;
    res.end();
  });
  svc = await startTestService({ WEBHOOK_ATTEMPTS: '3', WEBHOOK_BACKOFF_MS: '20', WEBHOOK_DISABLE_AFTER: '3', NOTIFY_POLL_MS: '200' });
}, 60_000);

afterAll(async () => {
  await svc.stop();
  await receiver.close();
});

it('sends the event again no sooner than a 429 Retry-After asked, then delivers it', async () => {
  const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager', 'cm-throttle')]);
  const hookId = await subscribe(svc, admin, `${receiver.url}/throttled`, 'whsec-throttle-0123456789abcdef0123456789');
  const caseId = await openCaseIn(svc, cm, 'report_signed');
  await transferRequest(svc, cm, caseId);
  await receiver.next((r) => r.path === '/throttled' && r.body.includes(caseId));
  const second = await receiver.next((r) => r.path === '/throttled' && r.body.includes(caseId) && (arrivals.get(caseId)?.length ?? 0) >= 2, 30_000);
  expect(second.path).toBe('/throttled');
  const [first, again] = arrivals.get(caseId) ?? [];
  // Asked to wait 2 s (WEBHOOK_BACKOFF_MS is 20 ms): not sent again before that.
  expect((again ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(1900);
  // Delivered on that second attempt; the 429 is on record as its first.
  const delivery = await eventually(
    async () => (await svc.service.db.query<{ state: string; attempts: number }>('SELECT state, attempts FROM webhook_deliveries WHERE webhook_id = $1', [hookId])).rows[0],
    (d) => d?.state === 'delivered',
    10_000,
  );
  expect(delivery).toEqual({ state: 'delivered', attempts: 2 });
}, 60_000);

describe('the retry delay', () => {
  it('is the exponential backoff, or a throttling answer’s Retry-After when longer, capped at 6 hours', () => {
    expect(webhookRetryDelay(1, 20, new Error('subscriber answered HTTP 500'))).toBe(20);
    expect(webhookRetryDelay(3, 1000, undefined)).toBe(4000);
    expect(webhookRetryDelay(1, 20, new SubscriberThrottledError(429, 5000))).toBe(5000);
    expect(webhookRetryDelay(3, 1000, new SubscriberThrottledError(503, 500))).toBe(4000);
    expect(throttledBy(429, { 'retry-after': '999999' }, Date.now())?.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(throttledBy(503, { 'retry-after': 'Sun, 06 Nov 1994 08:49:37 GMT', date: 'Sun, 06 Nov 1994 08:49:07 GMT' }, Date.now())?.retryAfterMs).toBe(30_000);
    // Not throttling: another status, or no Retry-After that reads as a delay.
    expect(throttledBy(500, { 'retry-after': '5' }, Date.now())).toBeUndefined();
    expect(throttledBy(429, {}, Date.now())).toBeUndefined();
    expect(throttledBy(429, { 'retry-after': 'soon' }, Date.now())).toBeUndefined();
  });
});
