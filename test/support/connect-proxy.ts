import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** A real HTTP CONNECT proxy on loopback for tests: it records each tunnel's target (`host:port`). */
export interface ConnectProxy {
  readonly url: string;
  readonly tunnels: string[];
  stop(): Promise<void>;
}

/** Splits `host:port` and `[v6]:port`. */
function target(authority: string): { host: string; port: number } {
  const at = authority.lastIndexOf(':');
  return { host: authority.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(authority.slice(at + 1)) };
}

/**
 * Starts the proxy. With `credentials` (`user:password`) a tunnel needs that Basic Proxy-Authorization
 * (407 otherwise). Plain absolute-form proxying is not offered: every request must tunnel.
 */
export async function startConnectProxy(options: { credentials?: string } = {}): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405).end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const expected = options.credentials ? `Basic ${Buffer.from(options.credentials).toString('base64')}` : undefined;
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    const authority = req.url ?? '';
    tunnels.push(authority);
    const { host, port } = target(authority);
    const upstream = net.connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const credentials = options.credentials ? `${options.credentials}@` : '';
  return {
    url: `http://${credentials}127.0.0.1:${port}`,
    tunnels,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
