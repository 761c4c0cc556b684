import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Binary, Bundle, CapabilityStatement, FhirResource } from 'fhir/r4';
import type { Redis } from 'ioredis';
import { errorFields, logger } from '../log';
import { SERVICE_VERSION } from '../version';
import type { AddressPolicy } from './address-policy';
import type { OutboundProxy } from './outbound-proxy';
import { DigestingLimit, digestBuffer, type AttachmentDigest } from './attachment-stream';
import { NO_AUTH, staticBearerAuth, type AuthStrategy } from './auth-strategy';
import { RedisCircuitBreaker, type Admission, type CircuitBreakerOptions, type CircuitSnapshot } from './circuit-breaker';
import { DEFAULT_TIMEOUT_MS, type EndpointConnection } from './endpoint';
import {
  AttachmentTooLargeError,
  CircuitOpenError,
  FhirClientError,
  FhirHttpError,
  FhirNetworkError,
  MalformedResponseError,
  NextLinkPathError,
  OffOriginUrlError,
  PermanentFhirError,
  ServerRetryAfterError,
  SmartAuthError,
  ClientRetiredError,
  RequestNotSentError,
} from './errors';
import type { FhirClientEvent, FhirRequestKind } from './events';
import { parseResource, parseResourceAsReceived, parseSearchPage, type PageReader, type ResourceAsReceived, type SearchPage } from './fhir-json';
import { discardBody, HttpTransport, isBodyIdleTimeout, readDecoded, type HttpMethod, type StreamingResponse } from './http-transport';
import { isTransportError, toFhirClientError } from './network-errors';
import { classifyIssueCodes, parseIssueCodes } from './operation-outcome';
import { RedisRateLimiter, type AcquireResult, type RateLimiterOptions } from './rate-limiter';
import { parseRetryAfter } from './retry-after';
import { RetryPolicy, type AttemptResult, type RequestTraits, type RetryPolicyOptions } from './retry-policy';
import { SmartBackendAuth, type SmartBackendAuthOptions } from './smart-backend-auth';
import { SpareLease } from './spare-lease';
import { assertAllowedEndpointUrl, assertSameOrigin, baseWithSlash, rebaseOnEndpointOrigin, type HostResolver, type RebasedLink, type UrlGuardOptions } from './url-guard';

/** Dependencies and tuning of a {@link FhirEndpointClient}. Only `redis` and `keyPrefix` are required. */
export interface FhirClientDeps {
  /** Shared Redis (token cache, rate limits, circuit breaker). */
  readonly redis: Redis;
  /** Prefix of every Redis key this client writes, e.g. `sob:`. */
  readonly keyPrefix: string;
  /** Uniform [0,1) source for retry jitter (seed it in tests). */
  readonly random?: () => number;
  /** Receives typed events (requests, retries, throttling, token refresh, circuit open). */
  readonly onEvent?: (event: FhirClientEvent) => void;
  /** Clock for Retry-After dates, tokens and the breaker. Default Date.now. */
  readonly now?: () => number;
  /** Sleep between retries; inject a fake in tests. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly retry?: Partial<Omit<RetryPolicyOptions, 'random' | 'now'>>;
  readonly breaker?: Partial<Pick<CircuitBreakerOptions, 'failureThreshold' | 'windowMs' | 'cooldownMs' | 'probeLeaseMs'>>;
  readonly limiter?: Partial<Pick<RateLimiterOptions, 'burst' | 'leaseMs' | 'maxPollMs' | 'maxWaitMs' | 'holdOnRetryAfter'>>;
  readonly smart?: Partial<Pick<SmartBackendAuthOptions, 'renewBeforeMs'>>;
  /** Address ranges allowed for connections; default from `endpoint.allowInsecureHttp`. */
  readonly addressPolicy?: AddressPolicy;
  /** DNS resolver (tests). */
  readonly resolve?: HostResolver;
  /** Cap on buffered FHIR JSON bodies (after decoding). Default 256 MiB. */
  readonly maxResponseBytes?: number;
  /** Replaces the strategy built from `endpoint.auth` (tests, custom schemes). */
  readonly auth?: AuthStrategy;
  /** Outbound proxy (`OUTBOUND_PROXY_URL`); direct connections when absent. */
  readonly proxy?: OutboundProxy;
}

/**
 * Options of {@link FhirEndpointClient.fetchBinaryTo}. `stopBeforeSend` withdraws the download while
 * its request has not been sent, as a page's (nothing written to the sink); a download already under
 * way is not cut.
 */
export interface FetchBinaryOptions extends PageRequestOptions {
  /** Refuse attachments larger than this (declared or counted). */
  readonly maxBytes: number;
  /** Accept header; default `*∕*` (a FHIR Binary endpoint then returns the raw content). */
  readonly accept?: string;
}

/** Options of a search, operation or page request. */
export interface PageRequestOptions {
  /**
   * Withdraws the request while it has not been sent — waiting for its limiter slot, its token or a
   * retry's backoff —: it then fails with {@link RequestNotSentError}. A request already sent is not
   * cut: its answer is read as usual. A half-open circuit's probe is sent even so (withdrawn, it would
   * leave every process refused until its lease ends).
   */
  readonly stopBeforeSend?: AbortSignal;
}

/** Result of an attachment download. */
export interface BinaryResult extends AttachmentDigest {
  /** Content-Type of the bytes (from the response, or the Binary resource's contentType). */
  readonly contentType: string;
}

/** Result of {@link FhirEndpointClient.createConditional}. */
export interface ConditionalCreateResult<T extends FhirResource> {
  /** 201 created, 200 an existing match (nothing created). */
  readonly status: 200 | 201;
  /** The resource when the server returned it (we ask with `Prefer: return=representation`). */
  readonly resource?: T;
  /** The `Location` header (`[base]/Type/id/_history/vid`), when sent. */
  readonly location?: string;
}

interface ExchangeSpec {
  readonly kind: FhirRequestKind;
  readonly method: HttpMethod;
  readonly url: URL;
  readonly resourceType?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly idempotent: boolean;
  /** Whether a failure while reading a 2xx body may be retried (false once bytes reached a caller's sink). */
  readonly retryBody: boolean;
  /**
   * A body of any size on a link of any speed (attachments): the request timeout ends with the
   * response headers, then the body fails only when it stops arriving for that long.
   */
  readonly idleBodyTimeout?: boolean;
  /** See {@link PageRequestOptions.stopBeforeSend}. */
  readonly stopBeforeSend?: AbortSignal;
}

const FHIR_JSON = 'application/fhir+json';
const MAX_REDIRECTS = 3;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const USER_AGENT = `second-opinion-bridge/${SERVICE_VERSION}`;
/** Pages at least this big (decoded) take long enough to parse to hide a Redis round trip. */
const PREFETCH_MIN_BYTES = 128 * 1024;

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Whether a call told to stop before sending (`stop`) must withdraw now: yes, unless the breaker made
 * it its half-open probe, which is always sent (PageRequestOptions).
 */
function withdrawn(stop: AbortSignal | undefined, admission: Admission): boolean {
  return stop?.aborted === true && admission.decision !== 'probe';
}

/** `sleep(ms)`, ended early when `stop` fires (the caller then sends nothing more). */
async function sleepUnless(sleep: (ms: number) => Promise<void>, ms: number, stop: AbortSignal | undefined): Promise<void> {
  if (!stop) return sleep(ms);
  if (stop.aborted) return;
  let onAbort = (): void => undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
  });
  stop.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([sleep(ms), aborted]);
  } finally {
    stop.removeEventListener('abort', onAbort);
  }
}

/**
 * Outbound client of one registered FHIR R4 endpoint (https://hl7.org/fhir/R4/http.html).
 *
 * Every request goes through, in order: the base-URL guard (once), the circuit breaker (fail fast
 * while open), the cross-process rate and concurrency limiter, the auth strategy (Authorization
 * header), the HTTP transport (keep-alive pool, SSRF-guarded DNS, whole-request timeout,
 * `Accept-Encoding: gzip` decoded in one shot), then the retry policy. A 401 drops the token and
 * retries once with a fresh one; redirects are followed only within the endpoint's origin (≤ 3).
 *
 * Create one client per endpoint per process and reuse it (it owns a connection pool); `close()`
 * it on shutdown.
 */
export class FhirEndpointClient {
  readonly endpoint: EndpointConnection;
  private readonly deps: FhirClientDeps;
  private readonly transport: HttpTransport;
  private readonly auth: AuthStrategy;
  private readonly limiter: RedisRateLimiter;
  private readonly breaker: RedisCircuitBreaker;
  private readonly policy: RetryPolicy;
  private readonly guard: UrlGuardOptions;
  private readonly base: URL;
  /** Closed (see {@link FhirEndpointClient.close}): no request starts any more. */
  private retired = false;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly spare: SpareLease;
  /** Whether the last slot came without waiting (no point prefetching a contended slot). */
  private unthrottled = true;
  private ready: Promise<void> | undefined;
  /** Origins whose `next` links this client moved onto the endpoint's origin (each logged once). */
  private readonly movedOrigins = new Set<string>();

  constructor(endpoint: EndpointConnection, deps: FhirClientDeps) {
    this.endpoint = endpoint;
    this.deps = deps;
    this.base = baseWithSlash(endpoint.baseUrl);
    this.timeoutMs = endpoint.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = deps.maxResponseBytes ?? 256 * 1024 * 1024;
    this.sleep = deps.sleep ?? defaultSleep;
    this.guard = { allowInsecureHttp: endpoint.allowInsecureHttp, addressPolicy: deps.addressPolicy, resolve: deps.resolve };
    this.transport = new HttpTransport({ ...this.guard, ...(deps.proxy ? { proxy: deps.proxy } : {}) });
    this.policy = new RetryPolicy({ ...deps.retry, random: deps.random ?? Math.random, now: deps.now ?? Date.now });
    this.limiter = new RedisRateLimiter({
      redis: deps.redis,
      keyPrefix: deps.keyPrefix,
      endpointId: endpoint.id,
      limits: endpoint,
      ...deps.limiter,
    });
    this.spare = new SpareLease(this.limiter);
    this.breaker = new RedisCircuitBreaker({
      redis: deps.redis,
      keyPrefix: deps.keyPrefix,
      endpointId: endpoint.id,
      now: deps.now,
      ...deps.breaker,
    });
    this.auth = deps.auth ?? this.buildAuth();
  }

  /** `GET [base]/metadata`: the server's CapabilityStatement (https://hl7.org/fhir/R4/http.html#capabilities). */
  async capabilities(): Promise<CapabilityStatement> {
    const url = new URL('metadata', this.base);
    return this.exchangeJson({ kind: 'capabilities', method: 'GET', url }, (raw) => parseResource<CapabilityStatement>(raw, 'CapabilityStatement'));
  }

  /** `GET [base]/[type]/[id]` (https://hl7.org/fhir/R4/http.html#read). */
  async read<T extends FhirResource = FhirResource>(type: T['resourceType'], id: string): Promise<T> {
    return this.readWith(type, id, (raw) => parseResource<T>(raw, type));
  }

  /** `GET [base]/[type]/[id]`, the answer taken by `parse` (the one request of the read methods). */
  private readWith<R>(type: FhirResource['resourceType'], id: string, parse: (raw: Buffer, wireBytes: number, res: StreamingResponse) => R): Promise<R> {
    assertType(type);
    if (!RESOURCE_ID.test(id)) throw new RangeError('invalid resource id');
    return this.exchangeJson({ kind: 'read', method: 'GET', url: new URL(`${type}/${id}`, this.base), resourceType: type }, parse);
  }

  /**
   * {@link read}, with the version to name in an update's `If-Match`: the resource's `meta.versionId`,
   * else the version of the `ETag` the server answered with (`W/"<versionId>"`: the two are the same
   * version id, https://hl7.org/fhir/R4/http.html#versioning); undefined when it gives neither.
   */
  async readVersioned<T extends FhirResource = FhirResource>(type: T['resourceType'], id: string): Promise<{ resource: T; versionId: string | undefined }> {
    return this.readWith(type, id, (raw, _wire, res) => {
      const resource = parseResource<T>(raw, type);
      return { resource, versionId: resource.meta?.versionId ?? versionOfEtag(firstHeader(res.headers['etag'])) };
    });
  }

  /**
   * {@link read}, with the body's bytes kept beside the resource (checked as `read` checks it): for the
   * raw store, which keeps what the server sent (https://hl7.org/fhir/R4/http.html#read).
   */
  async readAsReceived<T extends FhirResource = FhirResource>(type: T['resourceType'], id: string): Promise<ResourceAsReceived<T>> {
    return this.readWith(type, id, (raw) => parseResourceAsReceived<T>(raw, type));
  }

  /**
   * `GET [base]/[type]?params` (https://hl7.org/fhir/R4/http.html#search): the first page, read by
   * `read` ({@link parseSearchPage} unless given, e.g. {@link scanSearchPage} to store it raw).
   */
  search(type: string, params?: Readonly<Record<string, string | readonly string[]>>): Promise<SearchPage>;
  search<P>(type: string, params: Readonly<Record<string, string | readonly string[]>>, read: PageReader<P>, options?: PageRequestOptions): Promise<P>;
  async search<P>(type: string, params: Readonly<Record<string, string | readonly string[]>> = {}, read?: PageReader<P>, options: PageRequestOptions = {}): Promise<P | SearchPage> {
    assertType(type);
    const url = new URL(type, this.base);
    url.search = toQuery(params);
    return this.exchangeJson({ kind: 'search', method: 'GET', url, resourceType: type, ...options }, this.reader(read, url));
  }

  /**
   * Follows a Bundle `next` link. The URL must be on the endpoint's origin.
   * @throws OffOriginUrlError before any request when it is not.
   */
  fetchPage(url: string): Promise<SearchPage>;
  fetchPage<P>(url: string, read: PageReader<P>, options?: PageRequestOptions): Promise<P>;
  async fetchPage<P>(url: string, read?: PageReader<P>, options: PageRequestOptions = {}): Promise<P | SearchPage> {
    if (!this.endpoint.rebaseNextLinks) {
      const target = assertSameOrigin(this.endpoint.baseUrl, url, 'next-page');
      return this.exchangeJson({ kind: 'page', method: 'GET', url: target, ...options }, this.reader(read, target));
    }
    const link = this.rebased(url);
    try {
      return await this.exchangeJson({ kind: 'page', method: 'GET', url: link.url, ...options }, this.reader(read, link.url));
    } catch (err) {
      throw link.movedFrom !== undefined && !link.pathMapped ? withProxyPathHint(err, link.movedFrom, this.endpoint.declaredBaseUrl) : err;
    }
  }

  /**
   * A GET operation returning a Bundle, e.g. `operation('Patient/123/$everything', { _count: '500' })`
   * (https://hl7.org/fhir/R4/patient-operation-everything.html). `path` is relative to the base.
   */
  operation(path: string, params?: Readonly<Record<string, string | readonly string[]>>): Promise<SearchPage>;
  operation<P>(path: string, params: Readonly<Record<string, string | readonly string[]>>, read: PageReader<P>, options?: PageRequestOptions): Promise<P>;
  async operation<P>(path: string, params: Readonly<Record<string, string | readonly string[]>> = {}, read?: PageReader<P>, options: PageRequestOptions = {}): Promise<P | SearchPage> {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('/') || path.split('/').includes('..')) {
      throw new RangeError('operation path must be relative to the base URL');
    }
    const url = assertSameOrigin(this.endpoint.baseUrl, path, 'url');
    url.search = toQuery(params);
    return this.exchangeJson({ kind: 'operation', method: 'GET', url, ...options }, this.reader(read, url));
  }

  /** A `next` link on the endpoint's origin (endpoints registered with `rebaseNextLinks`). */
  private rebased(url: string): RebasedLink {
    const link = rebaseOnEndpointOrigin(this.endpoint.baseUrl, url, this.endpoint.declaredBaseUrl);
    const { movedFrom } = link;
    if (movedFrom !== undefined && !this.movedOrigins.has(movedFrom)) {
      this.movedOrigins.add(movedFrom);
      logger.warn("next links name another origin: followed on the endpoint's origin (rebaseNextLinks)", { endpointId: this.endpoint.id });
    }
    return link;
  }

  /** The body reader of a page request to `pageUrl` (given the response's `Date` header too). */
  private reader<P>(read: PageReader<P> | undefined, pageUrl: URL): (raw: Buffer, wire: number, res: StreamingResponse) => P | SearchPage {
    const baseUrl = this.endpoint.baseUrl;
    const page = read ?? parseSearchPage;
    return (raw, wire, res) => page(raw, wire, baseUrl, firstHeader(res.headers.date), pageUrl.toString());
  }

  /**
   * Streams an attachment (Attachment.url, `Binary/[id]`) into `sink`, computing size, SHA-256 and
   * SHA-1 on the way. The URL must be on the endpoint's origin. Refuses, with
   * {@link AttachmentTooLargeError}, a declared Content-Length over `maxBytes` before reading (for a
   * JSON answer, over what a Binary resource holding `maxBytes` takes in base64), and a stream that
   * crosses `maxBytes` as soon as it does (the sink is then destroyed). A FHIR
   * `Binary` resource returned as JSON is unwrapped (base64 `data` decoded; one without `data` is a
   * permanent {@link MalformedResponseError}); any other JSON is a document, stored as received.
   *
   * Failures before the first byte reaches the sink are retried; after that the error is thrown
   * (its `retryable` flag tells whether a new attempt, with a fresh sink, may succeed).
   * The sink is ended on success and destroyed on failure.
   */
  async fetchBinaryTo(url: string, sink: Writable, options: FetchBinaryOptions): Promise<BinaryResult> {
    try {
      const target = assertSameOrigin(this.endpoint.baseUrl, url, 'attachment');
      return await this.exchange(
        {
          kind: 'binary',
          method: 'GET',
          url: target,
          headers: { accept: options.accept ?? '*/*' },
          idempotent: true,
          retryBody: false,
          idleBodyTimeout: true,
          stopBeforeSend: options.stopBeforeSend,
        },
        (res) => this.consumeBinary(res, sink, options.maxBytes),
      );
    } catch (err) {
      if (!sink.destroyed) sink.destroy();
      throw err;
    }
  }

  /** {@link fetchBinaryTo} into memory; for small attachments only. */
  async fetchBinary(url: string, options: FetchBinaryOptions): Promise<BinaryResult & { readonly data: Buffer }> {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    const result = await this.fetchBinaryTo(url, sink, options);
    return { ...result, data: Buffer.concat(chunks) };
  }

  /**
   * Conditional create (https://hl7.org/fhir/R4/http.html#ccreate): `POST [base]/[type]` with
   * `If-None-Exist: [search]`. Safe to retry where the server honours it (its CapabilityStatement's
   * `conditionalCreate`): a repeat finds the first one (200). `idempotent: false` for one that does not.
   * @param ifNoneExist search parameters without `?`, e.g. `identifier=urn:ietf:rfc:3986|urn:uuid:…`
   * @throws PermanentFhirError 412 when the condition matches several resources.
   */
  async createConditional<T extends FhirResource>(resource: T, ifNoneExist: string, options: { idempotent?: boolean } = {}): Promise<ConditionalCreateResult<T>> {
    assertType(resource.resourceType);
    const url = new URL(resource.resourceType, this.base);
    return this.exchangeJson(
      {
        kind: 'create',
        method: 'POST',
        url,
        resourceType: resource.resourceType,
        body: JSON.stringify(resource),
        headers: { 'if-none-exist': ifNoneExist.replace(/^\?/, ''), prefer: 'return=representation' },
        // Resent after an ambiguous failure only where the server honours If-None-Exist (default: assumed).
        ...(options.idempotent === false ? { idempotent: false } : {}),
      },
      (raw, _wire, res) => {
        const status = res.status === 201 ? 201 : 200;
        const location = firstHeader(res.headers['location']) ?? firstHeader(res.headers['content-location']);
        let created: T | undefined;
        if (raw.length > 0) {
          const parsed = parseResource<FhirResource>(raw, undefined);
          if (parsed.resourceType === resource.resourceType) created = parsed as T;
        }
        return { status, resource: created, location };
      },
    );
  }

  /**
   * Update (https://hl7.org/fhir/R4/http.html#update): `PUT [base]/[type]/[id]`. With `ifMatchVersionId`
   * the server applies it only to that version (`If-Match: W/"<versionId>"`, optimistic locking,
   * https://hl7.org/fhir/R4/http.html#concurrency) and answers 412 when its copy changed since it was
   * read. Safe to resend: the same body again changes nothing (a resend after an applied one may
   * answer 412, which the caller settles by reading again).
   * @returns the resource as the server stored it, when it returned it
   */
  async update<T extends FhirResource>(resource: T, ifMatchVersionId?: string): Promise<T | undefined> {
    assertType(resource.resourceType);
    const id = resource.id;
    if (id === undefined || !RESOURCE_ID.test(id)) throw new RangeError('update needs a valid resource id');
    const url = new URL(`${resource.resourceType}/${id}`, this.base);
    return this.exchangeJson(
      {
        kind: 'update',
        method: 'PUT',
        url,
        resourceType: resource.resourceType,
        body: JSON.stringify(resource),
        headers: { prefer: 'return=representation', ...(ifMatchVersionId !== undefined ? { 'if-match': `W/"${ifMatchVersionId}"` } : {}) },
      },
      (raw) => {
        if (raw.length === 0) return undefined;
        const parsed = parseResource<FhirResource>(raw, undefined);
        return parsed.resourceType === resource.resourceType ? (parsed as T) : undefined;
      },
    );
  }

  /**
   * `POST [base]` with a transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction).
   * Resent after an ambiguous failure (timeout, reset, 5xx) only when `idempotent` is true, i.e. every
   * entry is conditional (`ifNoneExist`, conditional update); otherwise only when the server
   * certainly did not process it (429, 503, failed connect).
   */
  async transaction(bundle: Bundle, options: { idempotent?: boolean } = {}): Promise<Bundle> {
    if (bundle.type !== 'transaction' && bundle.type !== 'batch') throw new RangeError('bundle type must be transaction or batch');
    return this.exchangeJson(
      { kind: 'transaction', method: 'POST', url: new URL(this.base), body: JSON.stringify(bundle), idempotent: options.idempotent ?? false },
      (raw) => parseResource<Bundle>(raw, 'Bundle'),
    );
  }

  /**
   * The SMART scope the endpoint's token endpoint granted this client — what the server will let it
   * do —, or undefined where no SMART scope applies (no auth, a static bearer token: the server's
   * answers decide). It is the token response's `scope`, which "can be different from the scopes
   * requested" (https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5), else the
   * scope asked for (RFC 6749 §5.1, https://www.rfc-editor.org/rfc/rfc6749#section-5.1).
   *
   * Read from the token requests use (memory, then Redis, where it is cached with the token); when no
   * token is cached, one is obtained now, as the next request would. A paused endpoint's token
   * endpoint is not asked: {@link CircuitOpenError} while its circuit is open or held. A failure of
   * the token endpoint surfaces as {@link SmartAuthError}, as from a request, but is not counted
   * against the breaker here (the next request that meets it is).
   */
  async grantedScope(): Promise<string | undefined> {
    if (!this.auth.grantedScope) return undefined;
    if (this.retired) throw new ClientRetiredError(this.endpoint.id);
    await this.ensureReady();
    const held = this.breaker.holdingUntil();
    if (held !== undefined) throw this.circuitOpen(held, 'rejected');
    // Not admit(): a half-open circuit would make this call its probe, and a scope look-up is none.
    const circuit = await this.breaker.snapshot();
    if (circuit.state === 'open' && circuit.retryAt !== undefined) throw this.circuitOpen(circuit.retryAt, 'rejected');
    return this.auth.grantedScope();
  }

  /** The endpoint's circuit state, for progress display. */
  circuitState(): Promise<CircuitSnapshot> {
    return this.breaker.snapshot();
  }

  /**
   * Closes the client: requests in flight finish (the transport closes gracefully), and any request
   * or retry that would start from now on fails with {@link ClientRetiredError} — not sent, not
   * counted against the endpoint's health (an edited registration replaces its client mid-pull).
   */
  async close(): Promise<void> {
    this.retired = true;
    await this.spare.dispose();
    await this.transport.close();
  }

  // ---------------------------------------------------------------------------------------------

  private buildAuth(): AuthStrategy {
    const { auth } = this.endpoint;
    switch (auth.type) {
      case 'none':
        return NO_AUTH;
      case 'bearer':
        return staticBearerAuth(auth.token);
      case 'smart-backend':
        return new SmartBackendAuth({
          endpointId: this.endpoint.id,
          baseUrl: this.endpoint.baseUrl,
          config: auth,
          redis: this.deps.redis,
          keyPrefix: this.deps.keyPrefix,
          transport: this.transport,
          guard: this.guard,
          timeoutMs: this.timeoutMs,
          now: this.deps.now,
          ...this.deps.smart,
          onTokenRefreshed: ({ expiresInSeconds }) => this.emit({ type: 'token-refreshed', endpointId: this.endpoint.id, expiresInSeconds }),
        });
    }
  }

  /** A JSON exchange: buffered body, gzip accepted, parsed by `parse` (parse errors are retried). */
  private exchangeJson<T>(
    spec: Omit<ExchangeSpec, 'headers' | 'idempotent' | 'retryBody'> & { headers?: Record<string, string>; idempotent?: boolean },
    parse: (raw: Buffer, wireBytes: number, res: StreamingResponse) => T,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: FHIR_JSON, 'accept-encoding': 'gzip', ...spec.headers };
    if (spec.body !== undefined) headers['content-type'] = `${FHIR_JSON}; charset=utf-8`;
    const paging = spec.kind === 'search' || spec.kind === 'page' || spec.kind === 'operation';
    return this.exchange({ ...spec, headers, idempotent: spec.idempotent ?? true, retryBody: true }, async (res) => {
      const { body, wireBytes } = await readDecoded(res, this.maxResponseBytes);
      // A big page takes milliseconds to parse: fetch the next request's lease meanwhile.
      if (paging && body.length >= PREFETCH_MIN_BYTES && this.unthrottled) this.spare.prefetch();
      try {
        return parse(body, wireBytes, res);
      } catch (err) {
        throw outcomeInsteadOfResource(err, res.status, body) ?? err;
      }
    });
  }

  /** The request loop: breaker, limiter, auth, transport, 401 refresh, redirects, retry policy. */
  private async exchange<T>(spec: ExchangeSpec, consume: (res: StreamingResponse) => Promise<T>): Promise<T> {
    await this.ensureReady();
    const stop = spec.stopBeforeSend;
    // Withdrawn already: not even the breaker is asked (it could make this request its probe).
    if (stop?.aborted) throw new RequestNotSentError(this.endpoint.id);
    // The breaker check travels to Redis together with the first slot request (one round trip).
    let admitting: Promise<Admission> | undefined = this.breaker.admit();
    admitting.catch(() => undefined);
    let admission: Admission = { decision: 'closed', failures: 0 };
    let traits: RequestTraits = { idempotent: spec.idempotent };
    let url = spec.url;
    let attempt = 1;
    let redirects = 0;
    let authRefreshed = false;

    for (;;) {
      // Closed meanwhile (its registration changed): nothing more is sent through this client.
      if (this.retired) throw new ClientRetiredError(this.endpoint.id);
      // Withdrawn by its caller (a redirect to follow, a retry after a fresh token): nothing more is sent.
      if (withdrawn(stop, admission)) throw new RequestNotSentError(this.endpoint.id);
      let result: AttemptResult;
      let authorization: string | undefined;
      let location: string | undefined;
      let bodyStarted = false;
      try {
        const acquired = await this.admitAndAcquire(admitting, admission, stop);
        if (admitting) {
          admitting = undefined;
          admission = acquired.admission ?? admission;
          if (admission.decision === 'open') {
            void acquired.lease.release().catch(() => undefined);
            throw this.circuitOpen(admission.retryAt, 'rejected');
          }
          // A half-open probe gets a single attempt: its failure re-opens the circuit at once.
          if (admission.decision === 'probe') traits = { ...traits, maxAttempts: 1 };
        }
        const { lease, waitedForConcurrencyMs, waitedForRateMs } = acquired;
        this.unthrottled = waitedForConcurrencyMs === 0;
        if (waitedForConcurrencyMs > 0) this.emit({ type: 'throttled', endpointId: this.endpoint.id, source: 'concurrency', waitMs: waitedForConcurrencyMs });
        if (waitedForRateMs > 0) this.emit({ type: 'throttled', endpointId: this.endpoint.id, source: 'rate-limit', waitMs: waitedForRateMs });
        try {
          // A hold set (by a Retry-After) while this call waited for its slot: send nothing before it ends.
          const held = this.breaker.holdingUntil();
          if (held !== undefined) throw this.circuitOpen(held, 'rejected');
          // The token once the breaker let the call through: nothing is asked of a paused endpoint's
          // token endpoint either, and a probe that cannot get a token fails as a probe (see healthOf).
          authorization = await this.auth.authorization();
          // Withdrawn while it waited for its slot or token; a probe goes out even so (PageRequestOptions).
          if (withdrawn(stop, admission)) throw new RequestNotSentError(this.endpoint.id);
          const started = performance.now();
          const res = await this.transport.stream({
            method: spec.method,
            url,
            headers: { 'user-agent': USER_AGENT, ...spec.headers, ...(authorization ? { authorization } : {}) },
            body: spec.body,
            timeoutMs: this.timeoutMs,
            ...(spec.idleBodyTimeout ? { bodyIdleTimeoutMs: this.timeoutMs } : {}),
          });
          this.emit({
            type: 'request',
            endpointId: this.endpoint.id,
            kind: spec.kind,
            method: spec.method,
            resourceType: spec.resourceType,
            status: res.status,
            attempt,
            durationMs: Math.round(performance.now() - started),
          });
          if (res.status >= 200 && res.status < 300) {
            bodyStarted = !spec.retryBody;
            let value: T;
            try {
              value = await consume(res);
            } finally {
              res.done();
            }
            await this.recordHealth(admission.decision === 'probe' || (admission.decision === 'closed' && admission.failures > 0), 'success');
            return value;
          }
          location = firstHeader(res.headers['location']);
          result = await this.errorResult(res);
        } finally {
          // Not awaited: the release goes out on the same Redis connection ahead of any later
          // command of this client, and the caller need not wait a round trip for it.
          lease.release().catch((err: unknown) => logger.warn('fhir limiter release failed', { endpointId: this.endpoint.id, ...errorFields(err) }));
        }
      } catch (err) {
        if (err instanceof CircuitOpenError || err instanceof RequestNotSentError) throw err;
        // The transport closed under this request (the client was replaced): not the endpoint's fault.
        if (this.retired && !bodyStarted) throw new ClientRetiredError(this.endpoint.id);
        // Redis trouble or a bug, not an HTTP outcome: let it surface unchanged.
        if (!isTransportError(err)) throw err;
        if (bodyStarted) {
          // The body was already streaming into a caller's sink: it cannot be replayed here.
          const typed = toFhirClientError(err);
          typed.attempts = attempt;
          await this.recordHealth(true, bodyHealthOf(typed));
          throw typed;
        }
        result = { type: 'error', error: err };
      }

      if (result.type === 'response') {
        // 401: the token may have expired or been revoked; one fresh token, one more try.
        if (result.status === 401 && !authRefreshed && (await this.auth.invalidate(authorization))) {
          authRefreshed = true;
          continue;
        }
        if (location !== undefined && result.status >= 300 && result.status < 400) {
          url = this.redirectTarget(spec, url, result.status, location, ++redirects);
          continue;
        }
      }

      const decision = this.policy.decide(result, attempt, traits);
      const answer = answerOf(result);
      if (decision.kind === 'defer' && answer) {
        // Attempts spent on a server still asking to wait: a failure of the endpoint, as when none
        // named a time (counted first, so the hold below keeps the later of its cool-down and that time).
        if (decision.attemptsExhausted) await this.recordHealth(true, healthOf(result));
        throw await this.deferred(spec.kind, answer, decision, attempt);
      }
      if (decision.kind === 'retry') {
        this.emit({ type: 'retry', endpointId: this.endpoint.id, kind: spec.kind, attempt, delayMs: decision.delayMs, reason: decision.reason });
        if (answer && (answer.status === 429 || answer.status === 503)) {
          this.emit({ type: 'throttled', endpointId: this.endpoint.id, source: 'server', waitMs: decision.delayMs });
          // The wait the server named holds for every request to the endpoint, not only this one:
          // the other streams, the prefetched page, other workers (rate-limiter.ts holdRate).
          if (decision.serverNamed) {
            await this.limiter.holdRate(decision.delayMs).catch((err: unknown) => logger.warn('fhir limiter hold failed', { endpointId: this.endpoint.id, ...errorFields(err) }));
          }
        }
        logger.info('fhir request retry', {
          endpointId: this.endpoint.id,
          route: spec.kind,
          attempt,
          durationMs: decision.delayMs,
          reason: decision.reason,
        });
        await sleepUnless(this.sleep, decision.delayMs, stop);
        if (withdrawn(stop, admission)) throw new RequestNotSentError(this.endpoint.id);
        attempt += 1;
        const again = await this.breaker.admit();
        if (again.decision === 'open') throw this.circuitOpen(again.retryAt, 'rejected');
        // The circuit opened and cooled down while this call waited (other calls failed meanwhile):
        // the breaker admitted this retry as its half-open probe, or counts failures now. Its outcome
        // must be recorded (a probe's success closes the circuit; left unrecorded, every caller is
        // refused until the probe lease ends), and a probe gets this one attempt only.
        if (again.decision === 'probe') traits = { ...traits, maxAttempts: attempt };
        if (again.decision === 'probe' || again.failures > 0) admission = again;
        continue;
      }
      // A deferral with no answer to hold the endpoint by (a held token's status unknown): retryable.
      const failure = decision.kind === 'fail' ? decision : decision.kind === 'defer' ? { reason: decision.reason, permanent: false } : { reason: 'unexpected success', permanent: true };
      const error = this.finalError(result, failure);
      error.attempts = attempt;
      const health = healthOf(result);
      await this.recordHealth(health === 'failure' || admission.decision === 'probe' || (admission.decision === 'closed' && admission.failures > 0), health);
      throw error;
    }
  }

  /**
   * The server (the FHIR server or its SMART token endpoint) asked, by a `Retry-After` longer than a
   * request may wait or on the request's last attempt (RFC 9110 §10.2.3), to come back later: the
   * endpoint's circuit is held open until then in every process, so the job waits as for a paused
   * endpoint (its own backoff would ask sooner) and nothing reaches either server before the time it
   * asked. The hold itself counts nothing against the endpoint.
   */
  private async deferred(kind: FhirRequestKind, answer: Answer, decision: { readonly delayMs: number; readonly reason: string }, attempt: number): Promise<ServerRetryAfterError> {
    const { delayMs } = decision;
    const endpointId = this.endpoint.id;
    const until = (this.deps.now ?? Date.now)() + delayMs;
    let retryAt = until;
    try {
      retryAt = await this.breaker.hold(until);
    } catch (err) {
      // This process still holds back (in memory); other processes learn of it at their own 429.
      logger.warn('fhir circuit breaker update failed', { endpointId, ...errorFields(err) });
    }
    this.emit({ type: 'throttled', endpointId, source: 'server', waitMs: delayMs });
    this.emit({ type: 'circuit-open', endpointId, cause: 'opened', retryAt });
    const who = answer.source === 'token-endpoint' ? 'smart token endpoint' : 'fhir server';
    logger.warn(`${who} asked to wait: endpoint held until then`, { endpointId, route: kind, status: answer.status, durationMs: delayMs, to: retryAt, reason: decision.reason });
    const error = new ServerRetryAfterError(endpointId, retryAt, answer.status, delayMs, answer.source);
    error.attempts = attempt;
    return error;
  }

  /**
   * Takes a limiter slot; on the first attempt also awaits the breaker's answer, sent in parallel.
   * `stop` ends the wait for a slot (see {@link PageRequestOptions}), except for the breaker's
   * half-open probe, which is always sent (or every process would be refused until the probe's lease
   * ends): a call already known to be the probe (`admission`) waits for its slot without the stop; one
   * the breaker makes its probe during the wait takes a slot again without it, if the stop withdrew it.
   */
  private async admitAndAcquire(admitting: Promise<Admission> | undefined, admission: Admission, stop: AbortSignal | undefined): Promise<AcquireResult & { admission?: Admission }> {
    const slotStop = admission.decision === 'probe' ? undefined : stop;
    const spare = this.spare.take();
    const acquiring = spare ? spare.catch(() => this.limiter.acquire(slotStop)) : this.limiter.acquire(slotStop);
    if (!admitting) return acquiring;
    const [admitted, acquired] = await Promise.allSettled([admitting, acquiring]);
    if (admitted.status === 'rejected') {
      if (acquired.status === 'fulfilled') void acquired.value.lease.release().catch(() => undefined);
      throw admitted.reason;
    }
    if (acquired.status === 'rejected') {
      if (acquired.reason instanceof RequestNotSentError && admitted.value.decision === 'probe') {
        return { ...(await this.limiter.acquire()), admission: admitted.value };
      }
      throw acquired.reason;
    }
    return { ...acquired.value, admission: admitted.value };
  }

  /** Reads the (small) error body of a non-2xx response for its OperationOutcome codes. */
  private async errorResult(res: StreamingResponse): Promise<AttemptResult> {
    let body: Buffer | undefined;
    try {
      body = (await readDecoded(res, MAX_ERROR_BODY_BYTES)).body;
    } catch {
      body = undefined; // too large, truncated or undecodable: no OperationOutcome to read
    } finally {
      res.done();
    }
    return {
      type: 'response',
      status: res.status,
      headers: res.headers,
      body,
      issueCodes: parseIssueCodes(body),
    };
  }

  private redirectTarget(spec: ExchangeSpec, current: URL, status: number, location: string, count: number): URL {
    const endpointOrigin = `${this.base.protocol}//${this.base.host}`;
    let resolved: URL;
    try {
      resolved = new URL(location, current);
    } catch {
      throw new OffOriginUrlError('redirect', 'unparsable', endpointOrigin);
    }
    const target = assertSameOrigin(this.endpoint.baseUrl, resolved.toString(), 'redirect');
    if (spec.method !== 'GET') throw new PermanentFhirError(status, [], 'redirect of a non-GET request');
    if (count > MAX_REDIRECTS) throw new PermanentFhirError(status, [], 'too many redirects');
    return target;
  }

  private finalError(result: AttemptResult, decision: { reason: string; permanent: boolean }): FhirClientError {
    if (result.type === 'error') return toFhirClientError(result.error);
    const codes = result.issueCodes ?? [];
    if (decision.permanent) return new PermanentFhirError(result.status, codes, decision.reason);
    const retryAfterMs = parseRetryAfter(result.headers['retry-after'], (this.deps.now ?? Date.now)(), result.headers.date);
    return new FhirHttpError(result.status, codes, true, decision.reason, retryAfterMs);
  }

  private async consumeBinary(res: StreamingResponse, sink: Writable, maxBytes: number): Promise<BinaryResult> {
    const contentType = firstHeader(res.headers['content-type']) ?? 'application/octet-stream';
    const isJson = JSON_ATTACHMENT.test(contentType);
    // A JSON body may be a Binary resource, whose base64 data is 4/3 the attachment: its declared
    // length is held to that wrapper's limit, and the attachment's own size checked once decoded.
    const declared = Number(firstHeader(res.headers['content-length']));
    if (Number.isFinite(declared) && declared > (isJson ? jsonAttachmentBodyLimit(maxBytes) : maxBytes)) {
      discardBody(res.body);
      sink.destroy();
      throw new AttachmentTooLargeError(maxBytes, declared, true);
    }
    if (isJson) {
      // A FHIR Binary resource (base64 data inside JSON, 4/3 the size) or a JSON document; in memory.
      const { body } = await readDecoded(res, jsonAttachmentBodyLimit(maxBytes)).catch((err: unknown) => {
        sink.destroy();
        throw err;
      });
      const binary = binaryResourceIn(body, sink);
      const data = binary ? binaryData(binary, sink) : body;
      if (data.length > maxBytes) {
        sink.destroy();
        throw new AttachmentTooLargeError(maxBytes, data.length, false);
      }
      await pipeline(Readable.from([data], { objectMode: false }), sink);
      return { contentType: binary ? (binary.contentType ?? 'application/octet-stream') : contentType, ...digestBuffer(data) };
    }
    const limit = new DigestingLimit(maxBytes);
    const decoder = streamDecoder(firstHeader(res.headers['content-encoding']));
    if (decoder) await pipeline(res.body, decoder, limit, sink);
    else await pipeline(res.body, limit, sink);
    return { contentType, ...limit.digest() };
  }

  private async ensureReady(): Promise<void> {
    this.ready ??= assertAllowedEndpointUrl(this.endpoint.baseUrl, this.guard).then(
      () => undefined,
      (err: unknown) => {
        this.ready = undefined;
        throw err;
      },
    );
    return this.ready;
  }

  private async recordHealth(needed: boolean, health: 'success' | 'failure' | 'neutral'): Promise<void> {
    try {
      if (health === 'success' && needed) await this.breaker.recordSuccess();
      if (health === 'failure') {
        const after = await this.breaker.recordFailure();
        if (after.state === 'open' && after.retryAt !== undefined) {
          this.emit({ type: 'circuit-open', endpointId: this.endpoint.id, cause: 'opened', retryAt: after.retryAt });
          logger.warn('fhir endpoint circuit open', { endpointId: this.endpoint.id, to: after.retryAt });
        }
      }
    } catch (err) {
      // The breaker is advisory: a Redis hiccup must not turn a good response into an error.
      logger.warn('fhir circuit breaker update failed', { endpointId: this.endpoint.id, ...errorFields(err) });
    }
  }

  private circuitOpen(retryAt: number, cause: 'opened' | 'rejected'): CircuitOpenError {
    this.emit({ type: 'circuit-open', endpointId: this.endpoint.id, cause, retryAt });
    return new CircuitOpenError(this.endpoint.id, retryAt);
  }

  private emit(event: FhirClientEvent): void {
    if (!this.deps.onEvent) return;
    try {
      this.deps.onEvent(event);
    } catch (err) {
      logger.warn('fhir client event listener failed', { endpointId: this.endpoint.id, event: event.type, ...errorFields(err) });
    }
  }
}

/** An answer that may carry a `Retry-After`, and who sent it. */
interface Answer {
  readonly status: number;
  readonly source: 'fhir-server' | 'token-endpoint';
}

/**
 * The HTTP answer behind an attempt's result: the FHIR server's response, or the one of its SMART
 * token endpoint (or discovery) that failed the token request. The token endpoint is part of the
 * endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token), so
 * its `Retry-After` is honoured as the FHIR server's (RFC 9110 §10.2.3).
 */
function answerOf(result: AttemptResult): Answer | undefined {
  if (result.type === 'response') return { status: result.status, source: 'fhir-server' };
  const { error } = result;
  return error instanceof SmartAuthError && error.status !== undefined ? { status: error.status, source: 'token-endpoint' } : undefined;
}

/**
 * A 2xx answer whose body is an OperationOutcome where another resource was asked for (a Bundle, the
 * resource read): some servers report errors so, with status 200 (https://hl7.org/fhir/R4/http.html#2.21.0.4:
 * an OperationOutcome may come with any status). It is the server's error, not a malformed body: an
 * {@link FhirHttpError} with its issue codes, retried when they say the failure passes (`transient`
 * and its children, https://hl7.org/fhir/R4/codesystem-issue-type.html), else permanent — and never
 * "expected Bundle", which hides what the server said. Undefined for any other parse failure.
 */
function outcomeInsteadOfResource(err: unknown, status: number, body: Buffer): FhirHttpError | undefined {
  if (!(err instanceof MalformedResponseError) || err.retryable) return undefined;
  const codes = parseIssueCodes(body);
  if (codes === undefined) return undefined;
  const reason = `OperationOutcome instead of the resource asked for${codes.length > 0 ? `: ${codes.join(',')}` : ''}`;
  const codeClass = classifyIssueCodes(codes);
  return codeClass === 'transient' || codeClass === 'weak-transient' ? new FhirHttpError(status, codes, true, reason) : new PermanentFhirError(status, codes, reason);
}

/**
 * Whether a final failure says something about the endpoint's health. The endpoint's SMART token
 * endpoint (https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token) is
 * part of it: no request reaches the FHIR server without a token, so a token endpoint (or its
 * discovery) that answers 5xx or 429, or garbage, fails the endpoint as a 5xx of the FHIR server does,
 * and its jobs wait for the paused endpoint instead of spending their attempts. A refusal of our
 * registration (`invalid_client`, 400/401) says nothing of its health: it needs an operator.
 */
function healthOf(result: AttemptResult): 'success' | 'failure' | 'neutral' {
  if (result.type === 'response') return result.status >= 500 || result.status === 429 || result.status === 408 ? 'failure' : 'success';
  const typed = toFhirClientError(result.error);
  if (typed instanceof FhirNetworkError) return typed.code === 'ERR_FHIR_ADDRESS_REFUSED' ? 'neutral' : 'failure';
  if (typed instanceof MalformedResponseError && typed.retryable) return 'failure';
  if (typed instanceof SmartAuthError && typed.retryable && typed.status !== undefined) return 'failure';
  return 'neutral';
}

/**
 * The FHIR Binary resource a JSON attachment response holds (https://hl7.org/fhir/R4/binary.html#rest:
 * a server may answer a read of `Binary/[id]` with the resource rather than its content), or
 * undefined when the JSON is anything else: a document that happens to be JSON, stored as received.
 * JSON that does not parse was cut short on the way (a body ended early without a Content-Length):
 * malformed and retryable, never stored as the document.
 */
function binaryResourceIn(body: Buffer, sink: Writable): Binary | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    sink.destroy();
    throw new MalformedResponseError('the attachment is JSON that does not parse (cut short?)', true);
  }
  const isBinary = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && (parsed as { resourceType?: unknown }).resourceType === 'Binary';
  return isBinary ? (parsed as Binary) : undefined;
}

/** An attachment answered as JSON: a FHIR Binary resource (https://hl7.org/fhir/R4/binary.html#rest) or a JSON document. */
const JSON_ATTACHMENT = /^application\/(fhir\+)?json\b/i;

/**
 * The most bytes a JSON attachment response may have for an attachment of at most `maxBytes`: a
 * FHIR Binary resource carries its content as base64 `data` (https://hl7.org/fhir/R4/datatypes.html#base64Binary,
 * RFC 4648 §4: 4 characters per 3 bytes), plus 64 KiB for the rest of the resource. Both the declared
 * Content-Length and the body read are held to it; the decoded content is then held to `maxBytes`.
 */
function jsonAttachmentBodyLimit(maxBytes: number): number {
  return Math.ceil((maxBytes * 4) / 3) + 64 * 1024;
}

/**
 * A Binary resource's content (base64 `data`). A Binary without `data` holds no content to store:
 * a permanent failure saying so (the server will answer the same), never an empty file.
 */
function binaryData(binary: Binary, sink: Writable): Buffer {
  if (typeof binary.data !== 'string' || binary.data.length === 0) {
    sink.destroy();
    throw new MalformedResponseError('the attachment is a Binary resource without data: no content to store', false);
  }
  return Buffer.from(binary.data, 'base64');
}

/**
 * Health of a failure while a body streamed into a caller's sink: the server answered, so a body
 * that stopped arriving (idle timeout: one document, one slow link) says nothing of the endpoint.
 */
function bodyHealthOf(error: FhirClientError): 'success' | 'failure' | 'neutral' {
  return isBodyIdleTimeout(error) ? 'neutral' : healthOf({ type: 'error', error });
}

function assertType(type: string): void {
  if (!RESOURCE_TYPE.test(type)) throw new RangeError('invalid resource type');
}

function toQuery(params: Readonly<Record<string, string | readonly string[]>>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string') query.append(name, value);
    else for (const v of value) query.append(name, v);
  }
  return query.toString();
}

/** The version id in an `ETag` (`W/"3"` or `"3"`); undefined for none or another shape. */
function versionOfEtag(etag: string | undefined): string | undefined {
  const match = /^(?:W\/)?"([^"]+)"$/.exec(etag?.trim() ?? '');
  return match?.[1];
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function streamDecoder(encoding: string | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

/**
 * A 404 or 410 for a `next` link moved onto the endpoint's origin with its path kept: the proxy likely
 * maps paths (our `/fhir/r4` to the server's `/hapi-fhir/baseR4`) and the link did not lie under the
 * base the server declares for itself, so it could not be moved under the endpoint's base. The error
 * says so (the origin only: a link's path and query may name the patient). Other errors pass unchanged.
 */
function withProxyPathHint(err: unknown, movedFrom: string, declaredBaseUrl: string | undefined): unknown {
  if (!(err instanceof FhirHttpError) || (err.status !== 404 && err.status !== 410)) return err;
  return new NextLinkPathError(err.status, err.issueCodes, err.reason, movedFrom, declaredBaseUrl !== undefined);
}
