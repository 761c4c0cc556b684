import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
type IncomingHttpHeaders = Dispatcher.ResponseData['headers'];
import { defaultAddressPolicy, type AddressPolicy } from './address-policy';
import { FhirNetworkError, ResponseTooLargeError } from './errors';
import { toFhirClientError } from './network-errors';
import { bypassesProxy, type OutboundProxy } from './outbound-proxy';
import { assertHostAllowed, createGuardedLookup, type HostResolver } from './url-guard';

/**
 * The HTTP layer under the FHIR client: one undici {@link Agent} (keep-alive pool per origin) whose
 * connections resolve names through the SSRF-guarded lookup, whole-request timeouts, bounded
 * buffering, and one-shot decompression of the buffered body (perf-limits §3: fetch's streaming
 * decompression is ~2× slower than decompressing the buffered body at once).
 *
 * Redirects are never followed here; the caller decides (same origin only).
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface TransportRequest {
  readonly method: HttpMethod;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** Whole request (connect, headers, body) deadline, ms; with `bodyIdleTimeoutMs`, connect and headers only. */
  readonly timeoutMs: number;
  /**
   * For bodies of any length on links of any speed (attachments): no deadline once the response
   * headers are in; the body fails only when no byte of it arrives for this long (undici's
   * `bodyTimeout`, which is refreshed by every chunk and does not run while the reader applies
   * backpressure). Absent: `timeoutMs` covers the body too.
   */
  readonly bodyIdleTimeoutMs?: number;
}

/** A response whose body was read completely and decoded. */
export interface BufferedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body after content decoding (gunzip), exactly as the server produced it otherwise. */
  readonly body: Buffer;
  /** Bytes received on the wire (before decoding). */
  readonly wireBytes: number;
}

/** A response whose body is still streaming; call `done()` when finished with it. */
export interface StreamingResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Dispatcher.ResponseData['body'];
  /** Clears the request deadline. */
  done(): void;
  /** The request deadline as a signal (aborts the body stream when it fires). */
  readonly signal: AbortSignal;
}

/** True for the error of a body that stopped arriving for longer than its idle timeout (undici's `bodyTimeout`). */
export function isBodyIdleTimeout(err: unknown): boolean {
  return err instanceof FhirNetworkError && err.code === 'UND_ERR_BODY_TIMEOUT';
}

export interface HttpTransportOptions {
  readonly allowInsecureHttp: boolean;
  readonly addressPolicy?: AddressPolicy;
  readonly resolve?: HostResolver;
  /** Idle keep-alive time of pooled sockets. Default 30 s. */
  readonly keepAliveTimeoutMs?: number;
  /** TCP/TLS connect timeout. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Send requests through this proxy (CONNECT tunnels), except to the hosts it lists as direct. */
  readonly proxy?: OutboundProxy;
}

/** How long a target name checked before tunnelling stays checked (the OS may not cache DNS). */
const PROXY_CHECK_TTL_MS = 30_000;

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const brotli = promisify(zlib.brotliDecompress);

/**
 * Compressed bodies up to this size are decoded synchronously: faster than a thread-pool hop, and
 * the event loop is blocked longer by the JSON.parse that follows anyway. Larger ones go to the
 * thread pool so one huge page does not stall other jobs for long.
 */
const SYNC_DECODE_LIMIT = 8 * 1024 * 1024;

export class HttpTransport {
  private readonly agent: Agent;
  private readonly viaProxy: ProxyAgent | undefined;
  private readonly proxy: OutboundProxy | undefined;
  private readonly checkTarget: (hostname: string) => Promise<void>;
  /** Target names checked before tunnelling, until when. */
  private readonly checked = new Map<string, number>();

  constructor(options: HttpTransportOptions) {
    const policy = options.addressPolicy ?? defaultAddressPolicy(options);
    const keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
    const timeout = options.connectTimeoutMs ?? 10_000;
    this.agent = new Agent({ keepAliveTimeout, connect: { lookup: createGuardedLookup(policy, options.resolve), timeout } });
    this.proxy = options.proxy;
    this.viaProxy = options.proxy ? new ProxyAgent({ uri: options.proxy.url, keepAliveTimeout, proxyTls: { timeout }, requestTls: { timeout } }) : undefined;
    this.checkTarget = (hostname) => assertHostAllowed(hostname, policy, options.resolve);
  }

  /** The proxy for this URL, unless it is one of the hosts reached directly. */
  private dispatcherFor(url: URL): Agent | ProxyAgent {
    return this.viaProxy && this.proxy && !bypassesProxy(url.hostname, this.proxy.noProxy) ? this.viaProxy : this.agent;
  }

  /** Through the proxy, the name is resolved and checked here first (the guarded lookup does it for direct connections). */
  private async checkBeforeTunnel(hostname: string): Promise<void> {
    const until = this.checked.get(hostname);
    if (until !== undefined && until > Date.now()) return;
    await this.checkTarget(hostname);
    this.checked.set(hostname, Date.now() + PROXY_CHECK_TTL_MS);
  }

  /**
   * Sends a request and starts the response; the deadline keeps running until `done()`, or, with
   * `bodyIdleTimeoutMs`, until the headers are in (the body then has only its idle timeout).
   */
  async stream(request: TransportRequest): Promise<StreamingResponse> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DeadlineError()), request.timeoutMs);
    try {
      const dispatcher = this.dispatcherFor(request.url);
      if (dispatcher === this.viaProxy) await this.checkBeforeTunnel(request.url.hostname);
      const res = await dispatcher.request({
        origin: request.url.origin,
        path: `${request.url.pathname}${request.url.search}`,
        method: request.method,
        headers: request.headers,
        body: request.body ?? null,
        signal: controller.signal,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.bodyIdleTimeoutMs ?? request.timeoutMs,
      });
      if (request.bodyIdleTimeoutMs !== undefined) clearTimeout(timer);
      return { status: res.statusCode, headers: res.headers, body: res.body, signal: controller.signal, done: () => clearTimeout(timer) };
    } catch (err) {
      clearTimeout(timer);
      throw toFhirClientError(controller.signal.aborted ? controller.signal.reason : err);
    }
  }

  /**
   * Sends a request and reads the whole body (at most `maxBytes` after decoding), then decodes
   * `Content-Encoding: gzip | deflate | br` in one shot.
   */
  async buffered(request: TransportRequest, maxBytes: number): Promise<BufferedResponse> {
    const res = await this.stream(request);
    try {
      return await readDecoded(res, maxBytes);
    } finally {
      res.done();
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.viaProxy?.close()]);
  }
}

/** The reason given to the abort controller when the request deadline passes. */
class DeadlineError extends Error {
  constructor() {
    super('request deadline passed');
    this.name = 'TimeoutError';
  }
}

/**
 * Reads a streaming response to the end (at most `maxBytes` on the wire and after decoding) and
 * decodes `Content-Encoding: gzip | deflate | br` in one shot. Does not call `done()`.
 */
export async function readDecoded(res: StreamingResponse, maxBytes: number): Promise<BufferedResponse> {
  try {
    const wire = await readAll(res.body, maxBytes);
    const body = await decodeBody(wire, res.headers['content-encoding'], maxBytes);
    return { status: res.status, headers: res.headers, body, wireBytes: wire.length };
  } catch (err) {
    discardBody(res.body);
    throw toFhirClientError(res.signal.aborted ? res.signal.reason : err);
  }
}

/**
 * Abandons a response body and its connection. undici's body emits an abort error when destroyed;
 * a no-op listener keeps that from becoming an unhandled 'error' event.
 */
export function discardBody(body: StreamingResponse['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Collects a body (event-driven: cheaper per chunk than an async iterator), failing past `maxBytes`. */
function readAll(body: StreamingResponse['body'], maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        body.destroy(new ResponseTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size)));
    body.on('error', reject);
  });
}

/** Decodes a buffered body per its Content-Encoding (RFC 9110 §8.4). */
export async function decodeBody(wire: Buffer, encoding: string | string[] | undefined, maxBytes: number): Promise<Buffer> {
  const coding = (Array.isArray(encoding) ? encoding.join(',') : encoding ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity' || wire.length === 0) return wire;
  const options = { maxOutputLength: maxBytes };
  const small = wire.length < SYNC_DECODE_LIMIT;
  try {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return small ? zlib.gunzipSync(wire, options) : await gunzip(wire, options);
      case 'deflate':
        return small ? zlib.inflateSync(wire, options) : await inflate(wire, options);
      case 'br':
        return small ? zlib.brotliDecompressSync(wire, options) : await brotli(wire, options);
      default:
        throw Object.assign(new Error('unsupported content encoding'), { code: 'ERR_FHIR_CONTENT_ENCODING' });
    }
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw new ResponseTooLargeError(maxBytes);
    throw err;
  }
}
