import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A request as the test server saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly at: number;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** Requests currently being handled, and the most seen at once. */
  readonly stats: { inFlight: number; maxInFlight: number };
  handle(handler: Handler): void;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1:0 recording every request. */
export async function startTestServer(handler?: Handler): Promise<TestServer> {
  let current: Handler = handler ?? ((_req, res) => {
    res.writeHead(404).end();
  });
  const requests: SeenRequest[] = [];
  const stats = { inFlight: 0, maxInFlight: 0 };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      stats.inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      res.on('close', () => {
        stats.inFlight -= 1;
      });
      Promise.resolve(current(req, res, body)).catch(() => res.destroy());
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    stats,
    handle(h) {
      current = h;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends a FHIR JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-length': payload.length, ...headers });
  res.end(payload);
}

export function outcome(code: string, severity = 'error'): unknown {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code }] };
}
