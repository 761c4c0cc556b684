import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A FHIR server in front of a sandbox, answering without resource versions. */
export interface VersionlessProxy {
  /** Its FHIR base URL (the sandbox's, on the proxy's origin). */
  readonly baseUrl: string;
  stop(): Promise<void>;
}

/** Response headers passed on as they are (the body is rewritten, so no length, encoding or validators). */
const KEPT_HEADERS = ['content-type', 'retry-after', 'www-authenticate'];

/** Removes `meta.versionId` and `meta.lastUpdated` from every resource in `node`, in place. */
function stripVersions(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) stripVersions(item);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  const meta = obj.meta;
  if (typeof obj.resourceType === 'string' && typeof meta === 'object' && meta !== null) {
    const rest = { ...(meta as Record<string, unknown>) };
    delete rest.versionId;
    delete rest.lastUpdated;
    if (Object.keys(rest).length > 0) obj.meta = rest;
    else delete obj.meta;
  }
  for (const value of Object.values(obj)) stripVersions(value);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? Buffer.concat(chunks) : undefined;
}

/**
 * Starts a proxy that forwards every request to the sandbox at `upstreamBaseUrl` and answers with its
 * FHIR JSON rewritten as a server that keeps no versions sends it: no `meta.versionId` and no
 * `meta.lastUpdated` on any resource (https://hl7.org/fhir/R4/resource.html#Meta: both optional), and
 * the sandbox's origin in links and URLs replaced by the proxy's. Other bodies (Binary bytes) pass as
 * they are.
 */
export async function startVersionlessProxy(upstreamBaseUrl: string): Promise<VersionlessProxy> {
  const upstream = new URL(upstreamBaseUrl);
  let origin = '';
  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const name of ['accept', 'authorization', 'content-type', 'prefer']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const answer = await fetch(`${upstream.origin}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, body, redirect: 'manual' });
      const out: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const value = answer.headers.get(name);
        if (value !== null) out[name] = value;
      }
      const location = answer.headers.get('location');
      if (location !== null) out.location = location.split(upstream.origin).join(origin);
      let bytes = Buffer.from(await answer.arrayBuffer());
      if ((out['content-type'] ?? '').includes('json')) {
        const parsed: unknown = JSON.parse(bytes.toString('utf8').split(upstream.origin).join(origin));
        stripVersions(parsed);
        bytes = Buffer.from(JSON.stringify(parsed));
      }
      res.writeHead(answer.status, { ...out, 'content-length': String(bytes.length) });
      res.end(bytes);
    })().catch((err: unknown) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(err instanceof Error ? err.message : 'proxy error');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl: `${origin}${upstream.pathname}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
