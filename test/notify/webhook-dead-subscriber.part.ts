import { openCaseIn } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';
import { startWebhookReceiver, subscribe, transferRequest, type WebhookReceiver } from './webhook-support';

/**
 * A subscriber that accepts connections and never answers holds one `send-webhook` slot at a time
 * (per worker process), not all four: a healthy subscriber's events all arrive while the dead one's
 * first request still waits out `WEBHOOK_TIMEOUT_MS`. Before, the dead subscriber's
 * jobs filled every slot for the whole timeout, round after round. Real service, PostgreSQL and
 * Redis; two real loopback subscribers.
 */
let svc: TestService;
let dead: WebhookReceiver;
let healthy: WebhookReceiver;

beforeAll(async () => {
  [svc, dead, healthy] = await Promise.all([
    startTestService({ WEBHOOK_TIMEOUT_MS: '60000', NOTIFY_POLL_MS: '200' }),
    // Reads each request and never answers it.
    startWebhookReceiver(() => undefined),
    startWebhookReceiver(),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([dead.close(), healthy.close()]);
  await svc.stop();
});

it("delivers a healthy subscriber's events promptly while another subscriber never answers", async () => {
  const admin = await svc.token('admin');
  const cm = await svc.token('case_manager');
  // The dead subscriber registered first: its deliveries come first in every drained batch.
  await subscribe(svc, admin, `${dead.url}/dead`, 'whsec-dead-0123456789abcdef0123456789');
  await subscribe(svc, admin, `${healthy.url}/healthy`, 'whsec-healthy-0123456789abcdef012345');
  const caseId = await openCaseIn(svc, cm, 'in_review');

  const events = 12;
  for (let i = 0; i < events; i++) await transferRequest(svc, cm, caseId);
  // The dead subscriber's first request hangs for the whole 60 s timeout. Four slots filled by its
  // jobs (the old way) would have sent the healthy subscriber nothing for 60 s; with one request in
  // flight per subscriber, every healthy event arrives while that one request is still open.
  // (Counted, not timed: the bound below is only how long the test waits.)
  await eventually(async () => healthy.received.length, (n) => n >= events, 45_000);
  expect(new Set(healthy.received.map((r) => r.headers['webhook-id'])).size).toBe(events);
  // The dead subscriber was tried, one request at a time: still its first.
  expect(dead.received.length).toBe(1);
}, 120_000);
