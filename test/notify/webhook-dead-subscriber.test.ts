import { openCaseIn } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';
import { startWebhookReceiver, subscribe, transferRequest, type WebhookReceiver } from './webhook-support';

/**
 * A subscriber that accepts connections and never answers holds one `send-webhook` slot at a time
 * (per worker process), not all four: a healthy subscriber's events keep arriving within seconds
 * while the dead one's requests each wait out `WEBHOOK_TIMEOUT_MS`. Before, the dead subscriber's
 * jobs filled every slot for the whole timeout, round after round. Real service, PostgreSQL and
 * Redis; two real loopback subscribers.
 */
let svc: TestService;
let dead: WebhookReceiver;
let healthy: WebhookReceiver;

beforeAll(async () => {
  [svc, dead, healthy] = await Promise.all([
    startTestService({ WEBHOOK_TIMEOUT_MS: '10000', NOTIFY_POLL_MS: '200' }),
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
  const started = Date.now();
  for (let i = 0; i < events; i++) await transferRequest(svc, cm, caseId);
  await eventually(async () => healthy.received.length, (n) => n >= events, 30_000);
  const elapsed = Date.now() - started;
  // Four slots and a 10 s timeout: the dead subscriber's jobs would have held all of them for 10 s at a
  // time (12 of them: three rounds) before the healthy subscriber's last events were sent.
  expect(elapsed).toBeLessThan(8000);
  expect(new Set(healthy.received.map((r) => r.headers['webhook-id'])).size).toBe(events);
  // The dead subscriber was tried all the same (one request at a time).
  expect(dead.received.length).toBeGreaterThanOrEqual(1);
}, 90_000);
