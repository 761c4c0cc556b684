import type { JWK } from 'jose';

/**
 * How we authenticate to one registered FHIR endpoint.
 *
 * - `none`: open sandboxes only.
 * - `bearer`: a static token issued out of band (never refreshed; a 401 is permanent).
 * - `smart-backend`: SMART Backend Services (client credentials with a signed JWT assertion,
 *   RFC 7523), https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
export type EndpointAuth =
  | { readonly type: 'none' }
  | { readonly type: 'bearer'; readonly token: string }
  | SmartBackendAuthConfig;

/** SMART Backend Services registration of this service at one endpoint. */
export interface SmartBackendAuthConfig {
  readonly type: 'smart-backend';
  /** The client id the EHR assigned to us; used as `iss` and `sub` of the client assertion. */
  readonly clientId: string;
  /**
   * Our private key as a JWK: RSA (alg RS384) or EC P-384 (alg ES384), with `kid` and `alg` set.
   * The EHR knows the matching public key (usually through our JWKS URL).
   */
  readonly privateKeyJwk: JWK;
  /** Requested scope; defaults to `system/*.read` (SMART v1 syntax, accepted by v2 servers). */
  readonly scope?: string;
  /**
   * Token endpoint, when the server publishes none in `.well-known/smart-configuration`.
   * Normally omitted: discovery finds it.
   */
  readonly tokenUrl?: string;
  /**
   * The token endpoint recorded for this endpoint when an admin registered it or changed its base URL
   * or auth (what discovery named then; shown as the endpoint's `auth.tokenEndpoint`). A later
   * discovery naming another one is refused before any token request: that is the OAuth mix-up, a
   * server sending us to another server's token endpoint so that a token minted there is sent to it
   * (RFC 9700 §4.4, https://www.rfc-editor.org/rfc/rfc9700#section-4.4). Absent: not pinned yet
   * (registered before pinning existed, or discovery failed then), discovery is trusted.
   */
  readonly pinnedTokenEndpoint?: string;
}

/** Everything the outbound HTTP layer needs to know about one registered FHIR R4 endpoint. */
export interface EndpointConnection {
  /** Our id for the endpoint (safe to log; used in Redis keys). */
  readonly id: string;
  /** FHIR base URL (service root), e.g. `https://ehr.example.org/fhir/r4`. No query, no credentials. */
  readonly baseUrl: string;
  readonly auth: EndpointAuth;
  /** Politeness: request starts per second, across all worker processes. */
  readonly maxRequestsPerSecond: number;
  /** Politeness: requests in flight at once, across all worker processes. */
  readonly maxConcurrency: number;
  /** Allows `http:` and loopback addresses (local sandboxes). Never set for a real EHR. */
  readonly allowInsecureHttp: boolean;
  /**
   * Follow a searchset `next` link that names another origin on this endpoint's origin (path and query
   * kept): for an EHR behind a reverse proxy that publishes its internal address. Requests still go to
   * the endpoint's origin only. Default off: such a link is refused.
   */
  readonly rebaseNextLinks?: boolean;
  /**
   * With `rebaseNextLinks`: the base URL the server declares for itself (its CapabilityStatement's
   * `implementation.url`). A link under it is moved under `baseUrl` (a proxy that maps
   * `/fhir/r4` to the server's `/fhir`); any other link keeps its path on the endpoint's origin.
   */
  readonly declaredBaseUrl?: string;
  /**
   * Whole-request timeout (headers and body) in ms; default 60 000. Attachment downloads: the time to
   * their response headers, then the longest pause between body bytes (no deadline on the whole body).
   */
  readonly timeoutMs?: number;
}

/** Default scope for the record pull. */
export const DEFAULT_SMART_SCOPE = 'system/*.read';

/** Default whole-request timeout. */
export const DEFAULT_TIMEOUT_MS = 60_000;
