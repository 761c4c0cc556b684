import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Starts `server` on `host`:`port` (0: a free port) and answers the base URL to reach it from this
 * machine (a wildcard host, `0.0.0.0` or `::`, as 127.0.0.1). Rejects when the port cannot be had.
 */
export async function listenOn(server: http.Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shown}:${(server.address() as AddressInfo).port}`;
}
