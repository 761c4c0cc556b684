import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { insertWebhook } from '../../src/notify/webhook-repository';
import { WebhookTransports, type WebhookSenderDeps } from '../../src/notify/webhook-sender';
import { SecretBox } from '../../src/security/secret-box';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { startTestService, type TestService } from '../support/service';

/** One POST a subscriber received. */
export interface ReceivedWebhook {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A real local HTTP subscriber recording what it receives. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>` (register it with `allowInsecureHttp`). */
  readonly url: string;
  /** Every POST received, in order. */
  readonly received: ReceivedWebhook[];
  /** The first POST (already received or still to come) that `match` accepts; rejects after `timeoutMs`. */
  next(match: (r: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

/**
 * Starts a subscriber on an ephemeral loopback port. `respond` answers each request once its body is
 * read (default 204).
 */
export async function startWebhookReceiver(
  respond: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => {
    res.statusCode = 204;
    res.end();
  },
): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const waiters = new Set<{ match: (r: ReceivedWebhook) => boolean; resolve: (r: ReceivedWebhook) => void }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit: ReceivedWebhook = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(hit);
      respond(req, res);
      for (const waiter of waiters) {
        if (waiter.match(hit)) {
          waiters.delete(waiter);
          waiter.resolve(hit);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    next(match, timeoutMs = 30_000) {
      const already = received.find(match);
      if (already) return Promise.resolve(already);
      return new Promise<ReceivedWebhook>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (r: ReceivedWebhook) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching webhook within ${timeoutMs} ms (received ${received.length})`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A request a test left unanswered (a hanging subscriber) must not keep the server open.
        server.closeAllConnections();
      }),
  };
}

/** The service that sends webhooks, its subscriber, and the tokens to drive it: what {@link startWebhookService} starts. */
export interface WebhookService {
  readonly svc: TestService;
  readonly receiver: WebhookReceiver;
  readonly admin: string;
  /** A case manager's token. */
  readonly cm: string;
  /** Stops the service, then the subscriber. */
  stop(): Promise<void>;
}

/**
 * A local subscriber answering as `respond` does (as {@link startWebhookReceiver}), then the real
 * service sending webhooks quickly (2 attempts 20 ms apart, the outbox polled every 200 ms; `env` adds
 * to or changes that), an admin's token and a case manager's (subject `cmSub`).
 */
export async function startWebhookService(cmSub: string, respond?: Parameters<typeof startWebhookReceiver>[0], env: Record<string, string> = {}): Promise<WebhookService> {
  const receiver = await startWebhookReceiver(respond);
  const svc = await startTestService({ WEBHOOK_ATTEMPTS: '2', WEBHOOK_BACKOFF_MS: '20', NOTIFY_POLL_MS: '200', ...env });
  return {
    svc,
    receiver,
    admin: await svc.token('admin'),
    cm: await svc.token('case_manager', cmSub),
    async stop() {
      await svc.stop();
      await receiver.close();
    },
  };
}

/** Registers a subscriber of `events` at `url` (loopback, so `allowInsecureHttp`); returns its id. */
export async function subscribe(svc: TestService, admin: string, url: string, secret: string, events: readonly string[] = ['transfer.requested']): Promise<string> {
  const res = await svc.request('POST', '/api/webhooks', { token: admin, body: { url, secret, events, allowInsecureHttp: true } });
  if (res.status !== 201) throw new Error(`webhook registration refused: ${res.status} ${await res.text()}`);
  const view = (await res.json()) as { id: string };
  if ('secret' in view) throw new Error('the registration answer carries the secret');
  return view.id;
}

/** A transfer-of-care request on `caseId` (emits `transfer.requested`). */
export async function transferRequest(svc: TestService, cm: string, caseId: string): Promise<{ id: string; serviceRequest: { resourceType: string; intent: string } }> {
  const res = await svc.request('POST', `/api/cases/${caseId}/transfer-request`, {
    token: cm,
    body: { reason: 'The family moved closer to the hospital', destination: { organization: 'Children’s Hospital' } },
  });
  if (res.status !== 201) throw new Error(`transfer request refused: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; serviceRequest: { resourceType: string; intent: string } };
}

/**
 * The webhook sender called as the worker calls it, without the service: a fresh PostgreSQL database
 * (`t`), a local subscriber answering 204, the sender's deps and transports, and the key the
 * subscribers' secrets are sealed with.
 */
export interface WebhookSenderHarness {
  readonly t: TestDatabase;
  readonly receiver: WebhookReceiver;
  /** Sends time out after 2 s; `disableAfter` failed events in a row disable a subscriber. */
  readonly deps: WebhookSenderDeps;
  readonly transports: WebhookTransports;
  readonly secrets: SecretBox;
  /** Inserts an active subscriber of `transfer.requested` at the receiver under `path`; its id. */
  subscriber(path: string): Promise<string>;
  /** Closes the transports and the receiver, and drops the database. */
  stop(): Promise<void>;
}

/** Starts a {@link WebhookSenderHarness} whose subscribers are disabled after `disableAfter` failed events in a row. */
export async function startWebhookSenderHarness(disableAfter: number): Promise<WebhookSenderHarness> {
  const transports = new WebhookTransports();
  const secrets = new SecretBox(randomBytes(32));
  const t = await createTestDatabase();
  const receiver = await startWebhookReceiver();
  return {
    t,
    receiver,
    deps: { db: t.db, secrets, timeoutMs: 2000, disableAfter },
    transports,
    secrets,
    async subscriber(path) {
      const id = randomUUID();
      await insertWebhook(t.db, {
        id,
        url: `${receiver.url}${path}`,
        sealedSecret: secrets.seal('whsec-0123456789abcdef0123456789abcdef', id),
        events: ['transfer.requested'],
        allowInsecureHttp: true,
        createdBy: 'test',
      });
      return id;
    },
    async stop() {
      await transports.close();
      await receiver.close();
      await t.drop();
    },
  };
}
