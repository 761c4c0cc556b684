/**
 * An incoming request, read completely and reduced to what the routes need.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface SandboxRequest {
  readonly method: string;
  /** Absolute URL of the request as this server sees it. */
  readonly url: URL;
  /**
   * Path relative to the FHIR base, always starting with `/` (`/Observation`, `/metadata`, or `/`
   * for the base itself); undefined when the request is not under the base path.
   */
  readonly path: string | undefined;
  /** `path` plus the query string (`/Observation?patient=1`), what fault patterns are matched against. */
  readonly target: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Largest request body accepted (a 50,000-resource transaction Bundle is about 75 MB). */
export const MAX_BODY_BYTES = 512 * 1024 * 1024;

/** Reads the whole body; rejects bodies larger than {@link MAX_BODY_BYTES}. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('Request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Builds a {@link SandboxRequest} for a server whose FHIR base path is `basePath` (e.g. `/fhir`). */
export function toSandboxRequest(req: IncomingMessage, body: Buffer, origin: string, basePath: string): SandboxRequest {
  const url = new URL(req.url ?? '/', origin);
  let path: string | undefined;
  if (url.pathname === basePath || url.pathname === basePath + '/') {
    path = '/';
  } else if (url.pathname.startsWith(basePath + '/')) {
    path = url.pathname.slice(basePath.length);
  }
  const relative = path ?? url.pathname;
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    url,
    path,
    target: relative + url.search,
    query: url.searchParams,
    headers: req.headers,
    body,
  };
}

/** First value of a header that may be repeated. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The request as a server that ignores the search parameter `name` handles it (it does not support
 * it: lenient handling, https://hl7.org/fhir/R4/search.html#errors): `name` gone from the query.
 */
export function withoutParameter(request: SandboxRequest, name: string): SandboxRequest {
  const url = new URL(request.url);
  url.searchParams.delete(name);
  const relative = request.path ?? url.pathname;
  return { ...request, url, target: relative + url.search, query: url.searchParams };
}
