import type { Redis } from 'ioredis';
import { ClientRetiredError, FhirEndpointClient, insecureHttpAllowed, RedisCircuitBreaker, type FhirClientDeps, type FhirClientEvent, type UrlGuardOptions } from '../fhir';
import type { AuthStrategy } from '../fhir/auth-strategy';
import { DEFAULT_TIMEOUT_MS, type EndpointConnection } from '../fhir/endpoint';
import { HttpTransport } from '../fhir/http-transport';
import { discoverTokenEndpoint } from '../fhir/smart-backend-auth';
import { logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import type { EndpointRow } from './endpoint-repository';
import { declaredBaseOf, toConnection } from './endpoint-service';
import { refusingAuth, unsupportedFhirVersion } from './fhir-version';

/**
 * How many times {@link EndpointClients.withCurrentClient} starts its work again with a replaced
 * client before the refusal counts as a failure (an admin editing the endpoint over and over).
 */
export const MAX_CLIENT_REPLACEMENTS = 3;

/**
 * What a client is wanted for: `exchange` (searches, reads, writes: refused for a server that declares
 * another FHIR version than R4) or `capabilities` (reading its CapabilityStatement again, which is how
 * such a server is let back in once it speaks R4).
 */
export type ClientPurpose = 'exchange' | 'capabilities';

/** Options every client of an {@link EndpointClients} shares. */
export interface EndpointClientsOptions {
  /** Whole-request timeout of outbound requests (the client's default when absent). */
  readonly requestTimeoutMs?: number;
  /**
   * Production (`NODE_ENV=production`): an endpoint stored with `allowInsecureHttp` (registered before
   * production refused it, or written to the database directly) is held to the outbound policy all
   * the same — https and public addresses only; its requests are refused, saying so.
   */
  readonly production?: boolean;
}

/**
 * One {@link FhirEndpointClient} per endpoint per process (each owns a keep-alive pool, a token
 * cache and its limiter leases), rebuilt when the endpoint's registration changes (the replaced one
 * finishes what is in flight and refuses the rest with `ClientRetiredError`: ask again). Events go to
 * every listener (progress counters). Callers never close a client they got here; {@link closeAll}
 * does, at shutdown.
 */
export class EndpointClients {
  private readonly clients = new Map<string, { version: string; client: FhirEndpointClient }>();
  private readonly listeners = new Set<(endpointId: string, event: FhirClientEvent) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly extra: Partial<FhirClientDeps> = {},
    private readonly options: EndpointClientsOptions = {},
  ) {}

  /**
   * The client for a registered endpoint. The sealed secret is opened only when the client is
   * (re)built: its `updated_at` changes with every registration change, so a stale client is replaced;
   * so does the base URL the server declares, where the client rebases `next` links by it.
   */
  forEndpoint(row: EndpointRow, secrets: SecretBox, purpose: ClientPurpose = 'exchange'): FhirEndpointClient {
    const declaredBase = declaredBaseOf(row);
    // A server whose stored capabilities declare another FHIR version than R4 gets a client that
    // refuses every request, naming the version (fhir-version.ts); only its /metadata is read again.
    const refused = purpose === 'exchange' ? unsupportedFhirVersion(row.capabilities) : undefined;
    const version = `${row.updatedAt.toISOString()}${declaredBase !== undefined ? `|${declaredBase}` : ''}${refused !== undefined ? `|fhirVersion:${refused}` : ''}`;
    const cached = this.clients.get(row.id);
    if (cached && cached.version === version) return cached.client;
    if (refused === undefined) return this.get(toConnection(row, secrets), version);
    // No secret opened: nothing is ever sent through this client.
    const connection = { id: row.id, baseUrl: row.baseUrl, auth: { type: 'none' as const }, maxRequestsPerSecond: row.maxRequestsPerSecond, maxConcurrency: row.maxConcurrency, allowInsecureHttp: row.allowInsecureHttp };
    return this.get(connection, version, refusingAuth(refused));
  }

  /**
   * The outbound URL policy an endpoint registered with `allowInsecureHttp` is held to, with this
   * process's address policy and resolver (tests inject a resolver through `FhirClientDeps.resolve`):
   * what a base URL is checked against at registration and edit, as its requests will be.
   */
  urlGuard(allowInsecureHttp: boolean): UrlGuardOptions {
    return {
      allowInsecureHttp: insecureHttpAllowed(allowInsecureHttp, this.options.production),
      ...(this.extra.addressPolicy ? { addressPolicy: this.extra.addressPolicy } : {}),
      ...(this.extra.resolve ? { resolve: this.extra.resolve } : {}),
    };
  }

  /**
   * The SMART token endpoint the endpoint's server names now (`.well-known/smart-configuration`),
   * read under the same outbound policy, proxy and timeout as its client's requests. One
   * unauthenticated GET: no credential is sent. For pinning it (endpoint-service.ts).
   * @throws SmartAuthError when discovery fails or names a URL the policy refuses
   * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
   */
  async discoverTokenEndpoint(row: EndpointRow): Promise<string> {
    const guard = this.urlGuard(row.allowInsecureHttp);
    const transport = new HttpTransport({ ...guard, ...(this.extra.proxy ? { proxy: this.extra.proxy } : {}) });
    try {
      return await discoverTokenEndpoint({ baseUrl: row.baseUrl, transport, guard, timeoutMs: this.options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS, ...(this.extra.now ? { now: this.extra.now } : {}) });
    } finally {
      await transport.close();
    }
  }

  /** Forgets an endpoint's client (the endpoint was removed, or its registration refused): closed, its pool freed. */
  async drop(endpointId: string): Promise<void> {
    const cached = this.clients.get(endpointId);
    this.clients.delete(endpointId);
    await cached?.client.close();
  }

  /**
   * Runs `use` with the endpoint's current client. When the registration changes meanwhile and the
   * replaced client refuses a request (`ClientRetiredError`: not sent, nothing said about the
   * endpoint's health), the endpoint is read again and `use` starts over with the new client, up to
   * {@link MAX_CLIENT_REPLACEMENTS} times, so that an edit spends none of the job's retries. For work
   * that is safe to start again from its beginning (reads, and writes made idempotent).
   */
  async withCurrentClient<T>(
    loadEndpoint: () => Promise<EndpointRow>,
    secrets: SecretBox,
    use: (client: FhirEndpointClient, endpoint: EndpointRow) => Promise<T>,
    purpose: ClientPurpose = 'exchange',
  ): Promise<T> {
    for (let replaced = 0; ; replaced += 1) {
      const endpoint = await loadEndpoint();
      try {
        return await use(this.forEndpoint(endpoint, secrets, purpose), endpoint);
      } catch (err) {
        if (!(err instanceof ClientRetiredError) || replaced >= MAX_CLIENT_REPLACEMENTS) throw err;
        logger.info('endpoint client replaced while in use: starting again with the current one', { endpointId: err.endpointId });
      }
    }
  }

  /**
   * `version` changes when the registration does (its updated_at), so a stale client is replaced.
   * `auth` replaces the strategy built from the connection's auth (an endpoint refused for its FHIR version).
   */
  get(connection: EndpointConnection, version: string, auth?: AuthStrategy): FhirEndpointClient {
    const cached = this.clients.get(connection.id);
    if (cached && cached.version === version) return cached.client;
    if (cached) void cached.client.close();
    const timeout = connection.timeoutMs ?? this.options.requestTimeoutMs;
    const allowInsecureHttp = insecureHttpAllowed(connection.allowInsecureHttp, this.options.production);
    if (connection.allowInsecureHttp && !allowInsecureHttp) {
      logger.warn('endpoint allows insecure http, which production refuses: held to https and public addresses', { endpointId: connection.id });
    }
    const client = new FhirEndpointClient({ ...connection, allowInsecureHttp, ...(timeout === undefined ? {} : { timeoutMs: timeout }) }, {
      ...this.extra,
      ...(auth ? { auth } : {}),
      redis: this.redis,
      keyPrefix: this.keyPrefix,
      onEvent: (event) => {
        for (const listener of this.listeners) listener(connection.id, event);
        this.extra.onEvent?.(event);
      },
    });
    this.clients.set(connection.id, { version, client });
    return client;
  }

  /**
   * An endpoint's circuit breaker (shared by every process, in Redis), without building its client:
   * no secret opened, no connection pool made. To read it or, as an operator, reset it.
   */
  circuit(endpointId: string): Pick<RedisCircuitBreaker, 'snapshot' | 'reset'> {
    return new RedisCircuitBreaker({ redis: this.redis, keyPrefix: this.keyPrefix, endpointId, now: this.extra.now });
  }

  onEvent(listener: (endpointId: string, event: FhirClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.client.close()));
  }
}
