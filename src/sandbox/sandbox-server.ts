/**
 * A sandbox FHIR R4 server on loopback: Medplum's FhirRouter + an indexed MemoryRepository behind a
 * small HTTP adapter, with SMART Backend Services auth, paging from search snapshots (offset or
 * HAPI-style token links), fault injection and request/write logs for tests.
 *
 * ```ts
 * const server = await startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'token' });
 * await server.load(bundle);
 * server.faults.add({ match: 'GET /Observation*', action: { kind: 'rate-limit', retryAfterSeconds: 2 }, nth: 3 });
 * // … talk to server.baseUrl over HTTP …
 * await server.stop();
 * ```
 *
 * @see https://hl7.org/fhir/R4/http.html
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { listen } from '../http/listen';
import type { AddressInfo } from 'node:net';
import { FhirRouter } from '@medplum/fhir-router';
import type { Resource } from '@medplum/fhirtypes';
import { buildCapabilityStatement } from './capability-statement';
import { FaultRegistry } from './faults/fault-registry';
import { loadFhirDefinitions } from './fhir-definitions';
import { Delays } from './http/delays';
import { createRequestHandler } from './http/request-handler';
import type { AuthMode, RouteContext } from './http/route-context';
import { WireJsonCache } from './http/wire-json';
import { loadIntoRepository, type LoadInput, type LoadOptions, type LoadResult } from './load';
import { RequestLog, type RecordedRequest } from './observability/request-log';
import { WrittenResourceLog, type WrittenResource } from './observability/written-resources';
import { ReferenceCache } from './operations/resource-references';
import type { PagingStyle } from './paging/page-links';
import { SearchSnapshotStore } from './paging/search-snapshots';
import { SandboxRepository } from './repository/sandbox-repository';
import { AccessTokenStore } from './smart/access-tokens';
import { ClientRegistry, type ClientRegistration } from './smart/client-registry';
import { JtiReplayCache } from './smart/jti-replay-cache';
import { ScopeSet } from './smart/scopes';
import type { DeclaredSearchParameters } from './search/declared-parameters';

export interface SandboxServerOptions {
  /** Name used in logs, the CapabilityStatement and fault rules (`care-team-a`). */
  readonly name: string;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** Host to bind; default `127.0.0.1`. */
  readonly host?: string;
  /** Path of the FHIR base; default `/fhir`. */
  readonly basePath?: string;
  /** `smart` (default): bearer tokens from the SMART Backend Services token endpoint; `none`: open. */
  readonly auth?: AuthMode;
  /** Style of `next` links: `offset` (default) or `token` (HAPI `_getpages`). */
  readonly paging?: PagingStyle;
  /** Latency added to every request (ms); default 0. Changeable later with `server.latencyMs`. */
  readonly latencyMs?: number;
  /** Page size when the client sends no `_count`; default 20. */
  readonly defaultCount?: number;
  /** Largest page; a larger `_count` is reduced to it. Default 1000. */
  readonly maxCount?: number;
  /** Lifetime of access tokens (`expires_in`); default 300 s. */
  readonly tokenLifetimeSeconds?: number;
  /** Seed of probabilistic faults; default 1. */
  readonly seed?: number;
  /** How long an unused search snapshot is kept for paging; default 10 minutes. */
  readonly snapshotTtlMs?: number;
  /** Clock skew accepted on client assertions; default 5 s. */
  readonly clockToleranceSeconds?: number;
  /** Clock (epoch ms) for tokens, `meta.lastUpdated` and snapshots; default `Date.now`. For tests. */
  readonly now?: () => number;
  /**
   * Per resource type, the only search parameters the server declares in its CapabilityStatement and
   * takes: a search of that type with any other search parameter is refused with 400 `not-supported`,
   * as a strict server does (search/declared-parameters.ts). Types not named: every parameter the
   * sandbox evaluates. Default: none named.
   */
  readonly searchParams?: DeclaredSearchParameters;
}

export interface SandboxServer {
  readonly name: string;
  /** FHIR base URL, e.g. `http://127.0.0.1:41234/fhir`. */
  readonly baseUrl: string;
  /** Token endpoint URL (`{baseUrl}/auth/token`); also the `aud` of client assertions. */
  readonly tokenUrl: string;
  readonly port: number;
  readonly auth: AuthMode;
  readonly paging: PagingStyle;
  /** Fault rules of this server. */
  readonly faults: FaultRegistry;
  /** Global latency per request (ms); may be changed while running. */
  latencyMs: number;
  /** Registers a SMART Backend Services client (public JWKS, allowed scopes). */
  registerClient(registration: ClientRegistration): void;
  /** Issues an access token without the JWT dance (for tests that are not about auth). */
  issueAccessToken(clientId: string, scopes?: string): string;
  /** Seeds resources (see load.ts); throws `SandboxLoadError` if the transaction fails. */
  load(input: LoadInput, options?: LoadOptions): Promise<LoadResult>;
  /** The stored resource, or undefined (a copy). */
  read<T extends Resource = Resource>(resourceType: T['resourceType'], id: string): T | undefined;
  /** Removes all resources, search snapshots, request counts and written-resource records (not faults or clients). */
  reset(): void;
  /** Requests received; all, or those matching a pattern like `GET /Observation*` (route-pattern.ts). */
  requestCount(pattern?: string): number;
  /** The last requests received, oldest first. */
  requests(): readonly RecordedRequest[];
  /** Resources written over HTTP (not by `load`), oldest first; optionally of one type. */
  writtenResources(resourceType?: string): readonly WrittenResource[];
  /** Stops listening, drops every connection (including hung ones) and cancels pending delays. */
  stop(): Promise<void>;
}

export async function startSandboxServer(options: SandboxServerOptions): Promise<SandboxServer> {
  loadFhirDefinitions();
  const now = options.now ?? Date.now;
  const host = options.host ?? '127.0.0.1';
  const basePath = (options.basePath ?? '/fhir').replace(/\/+$/, '');
  const httpServer = createServer({ keepAliveTimeout: 5000 });
  await listen(httpServer, options.port ?? 0, host);
  const port = (httpServer.address() as AddressInfo).port;
  const origin = `http://${host}:${port}`;
  const baseUrl = `${origin}${basePath}`;
  const tokenUrl = `${baseUrl}/auth/token`;
  const auth = options.auth ?? 'smart';
  const paging = options.paging ?? 'offset';
  const maxCount = options.maxCount ?? 1000;

  const repo = new SandboxRepository(now);
  const router = new FhirRouter();
  const clients = new ClientRegistry();
  const tokens = new AccessTokenStore(now);
  const faults = new FaultRegistry(options.seed ?? 1);
  const log = new RequestLog();
  const written = new WrittenResourceLog(now);
  repo.onWrite(written.onWrite);
  const snapshots = new SearchSnapshotStore(options.snapshotTtlMs ?? 10 * 60_000, now);
  const delays = new Delays();
  const hung = new Set<ServerResponse>();
  let capabilityJson: string | undefined;
  const tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 300;

  const wire = new WireJsonCache(baseUrl);
  const ctx: RouteContext = {
    name: options.name,
    baseUrl,
    tokenUrl,
    auth,
    paging,
    defaultCount: Math.min(options.defaultCount ?? 20, maxCount),
    maxCount,
    ...(options.searchParams !== undefined ? { searchParams: options.searchParams } : {}),
    repo,
    router,
    snapshots,
    wire,
    references: new ReferenceCache(baseUrl),
    tokenEndpoint: {
      tokenUrl,
      clients,
      tokens,
      tokenLifetimeSeconds,
      replayCache: new JtiReplayCache(now),
      now,
      clockToleranceSeconds: options.clockToleranceSeconds ?? 5,
    },
    now,
    capabilityJson: () =>
      (capabilityJson ??= JSON.stringify(
        buildCapabilityStatement({ name: options.name, baseUrl, tokenUrl: auth === 'smart' ? tokenUrl : undefined, pagingStyle: paging, maxCount, searchParams: options.searchParams })
      )),
  };

  const server: SandboxServer = {
    name: options.name,
    baseUrl,
    tokenUrl,
    port,
    auth,
    paging,
    faults,
    latencyMs: options.latencyMs ?? 0,
    registerClient: (registration) => clients.register(registration),
    issueAccessToken: (clientId, scopes = 'system/*.*') => tokens.issue(clientId, ScopeSet.parse(scopes).scopes, tokenLifetimeSeconds).token,
    load: async (input, loadOptions) => {
      const result = await loadIntoRepository(repo, router, input, loadOptions, (stored, json) => wire.prime(stored, json));
      snapshots.clear();
      return result;
    },
    read: <T extends Resource>(resourceType: T['resourceType'], id: string) => {
      const stored = repo.getStored(resourceType, id);
      return stored ? (structuredClone(stored) as T) : undefined;
    },
    reset: () => {
      repo.clear();
      snapshots.clear();
      log.clear();
      written.clear();
    },
    requestCount: (pattern) => log.count(pattern),
    requests: () => log.requests(),
    writtenResources: (resourceType) => written.list(resourceType),
    stop: () => stopServer(httpServer, delays, hung),
  };

  httpServer.on(
    'request',
    createRequestHandler({
      ctx,
      origin,
      basePath,
      faults,
      log,
      delays,
      latencyMs: () => server.latencyMs,
      onHang: (res) => {
        hung.add(res);
        res.on('close', () => hung.delete(res));
      },
    })
  );
  return server;
}

function stopServer(server: Server, delays: Delays, hung: Set<ServerResponse>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    delays.cancelAll();
    for (const res of hung) {
      res.socket?.destroy();
    }
    hung.clear();
    server.closeAllConnections();
  });
}
