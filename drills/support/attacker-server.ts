import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The "attacker": an HTTP server on every loopback address (IPv4 and IPv6, port shared) that
 * answers anything with a plausible FHIR body and counts what reaches it. An SSRF probe passes
 * when it stays at zero.
 */
export interface AttackerServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** Requests received so far, and their targets. */
  hits(): readonly string[];
  stop(): Promise<void>;
}

/** Starts the attacker server on a free port of every loopback address. */
export async function startAttackerServer(): Promise<AttackerServer> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.headers.host ?? ''}${req.url ?? ''}`);
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['json'] }));
  });
  // '::' is dual-stack: 127.0.0.1, ::1 and ::ffff:127.0.0.1 all reach it.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '::', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    hits: () => [...seen],
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
