import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestService } from '../support/service';

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
