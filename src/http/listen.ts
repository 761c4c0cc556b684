import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `server` on `host`:`port` (0: a free port); rejects when the port cannot be had. */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Starts `server` as {@link listen} does, and answers the port it got and the base URL to reach it
 * from this machine (a wildcard host, `0.0.0.0` or `::`, as 127.0.0.1).
 */
export async function listenOn(server: http.Server, port: number, host: string): Promise<{ url: string; port: number }> {
  await listen(server, port, host);
  const bound = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return { url: `http://${shown}:${bound}`, port: bound };
}
