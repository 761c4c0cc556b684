/** A tiny JSON client for the service's API, used by the demo (black-box, over HTTP). */

/** A non-2xx answer, with the problem document the service sent. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly method: string,
    readonly route: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${route} answered ${status}: ${body.slice(0, 600)}`);
  }
}

export interface ApiClient {
  json<T>(method: string, route: string, token: string, body?: unknown): Promise<T>;
  /** Answers the status and body without throwing (for polling until something exists). */
  tryJson<T>(method: string, route: string, token: string): Promise<{ status: number; body: T | undefined }>;
  bytes(route: string, token: string): Promise<Buffer>;
  multipart<T>(route: string, token: string, form: FormData): Promise<T>;
}

export function apiClient(baseUrl: string): ApiClient {
  const send = async (method: string, route: string, token: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(`${baseUrl}${route}`, { ...init, method, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
    if (!res.ok) throw new ApiError(method, route, res.status, await res.text());
    return res;
  };
  return {
    async json<T>(method: string, route: string, token: string, body?: unknown): Promise<T> {
      const res = await send(method, route, token, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      const text = await res.text();
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async tryJson<T>(method: string, route: string, token: string) {
      const res = await fetch(`${baseUrl}${route}`, { method, headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      return { status: res.status, body: res.ok && text ? (JSON.parse(text) as T) : undefined };
    },
    async bytes(route: string, token: string): Promise<Buffer> {
      return Buffer.from(await (await send('GET', route, token)).arrayBuffer());
    },
    async multipart<T>(route: string, token: string, form: FormData): Promise<T> {
      return (await (await send('POST', route, token, { body: form })).json()) as T;
    },
  };
}

/** Polls `read` every `everyMs` until `done` holds; fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 120_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
