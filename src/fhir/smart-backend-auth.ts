import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorFields, logger } from '../log';
import type { AuthStrategy } from './auth-strategy';
import { ClientAssertionSigner } from './client-assertion';
import { DEFAULT_SMART_SCOPE, type SmartBackendAuthConfig } from './endpoint';
import { SmartAuthError } from './errors';
import type { BufferedResponse, HttpTransport } from './http-transport';
import { parseRetryAfter } from './retry-after';
import { RedisTokenCache, type CachedToken } from './token-cache';
import { assertAllowedEndpointUrl, baseWithSlash, type UrlGuardOptions } from './url-guard';

/**
 * SMART Backend Services authorization
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html):
 *
 * 1. Discovery: `GET <base>/.well-known/smart-configuration` → `token_endpoint` (unless the
 *    registration gives `tokenUrl`); a relative one is resolved against the configuration's URL
 *    ({@link resolveTokenEndpoint}). The token URL passes the same URL policy as the endpoint
 *    (https, no private addresses); it may be on another origin, as is common. It is then used as
 *    published (an absolute one character for character, a relative one as resolved), never
 *    re-serialized: see {@link discoverTokenEndpoint}. When the endpoint has a
 *    pinned token endpoint (`pinnedTokenEndpoint`, recorded at registration), discovery naming
 *    another one is refused before anything is sent to it ({@link assertPinnedTokenEndpoint}).
 * 2. Token request: `POST token_endpoint` with `grant_type=client_credentials`, `scope`,
 *    `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a fresh
 *    signed `client_assertion` (RFC 7523, see {@link ClientAssertionSigner}) whose `aud` is that
 *    same token URL string: "the FHIR authorization server's token URL (the same URL to which this
 *    authentication JWT will be posted)"
 *    (https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint).
 * 3. Caching: the token is kept in Redis per endpoint id + FHIR base URL + token URL + pinned token
 *    endpoint + client + key + scope ({@link tokenCacheIdentity}: a token never outlives a move of the endpoint to another
 *    server) with TTL =
 *    `expires_in` − its renewal margin ({@link renewalMarginMs}: `renewBeforeMs`, at most a quarter of
 *    `expires_in`), and in memory. Concurrent callers in one process share one
 *    in-flight request; across processes a `SET NX PX` lock lets one process fetch while the
 *    others wait for the cached token. The lock outlasts the token request it covers
 *    ({@link tokenLockTtlMs}: the request's timeout plus a margin; discovery is done before the lock
 *    is taken), and a waiting process gives up only after a whole lock TTL more, so a slow token
 *    endpoint is still asked once, not once per process.
 *    A `Retry-After` of the token endpoint is kept beside the token until it passes: no process asks
 *    before then, not even one that was waiting on the lock when the answer came.
 * 4. `invalidate(refused)` (after a 401) drops the token only if the cache still holds that very
 *    token, so a fresh token fetched meanwhile by another process survives.
 * 5. Granted scope: the token response's `scope` is the scope of access authorized, which "can be
 *    different from the scopes requested" (https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5);
 *    RFC 6749 §5.1 lets a server leave it out only when it is the scope requested
 *    (https://www.rfc-editor.org/rfc/rfc6749#section-5.1). It is kept with the token, in memory and
 *    in Redis, and read by {@link SmartBackendAuth.grantedScope}.
 *
 * Tokens and assertions are never logged or put in error messages.
 */
export interface SmartBackendAuthOptions {
  readonly endpointId: string;
  readonly baseUrl: string;
  readonly config: SmartBackendAuthConfig;
  readonly redis: Redis;
  /** Redis key prefix (same as the client's). */
  readonly keyPrefix: string;
  readonly transport: HttpTransport;
  readonly guard: UrlGuardOptions;
  /** Deadline of each request to the token endpoint and its discovery, ms (the endpoint's request timeout). */
  readonly timeoutMs: number;
  /** Renew tokens with less than this left (at most a quarter of their lifetime: {@link renewalMarginMs}). Default 60 s. */
  readonly renewBeforeMs?: number;
  readonly now?: () => number;
  /** Called when this process obtained a new token from the token endpoint. */
  readonly onTokenRefreshed?: (info: { expiresInSeconds: number }) => void;
}

const SmartConfiguration = z.object({ token_endpoint: z.string().min(1) });
const TokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.coerce.number().positive().optional(),
  /** Any JSON value: only a non-blank string is a grant ({@link grantedScopeOf}). */
  scope: z.unknown().optional(),
});
const OAuthError = z.object({ error: z.string() });

/**
 * What the cross-process fetch lock outlasts the token request's own deadline by: signing the
 * assertion, writing the token to Redis, timer slack.
 */
export const TOKEN_LOCK_MARGIN_MS = 5_000;

/**
 * The TTL of the cross-process token fetch lock: the token request's timeout (`requestTimeoutMs`)
 * plus {@link TOKEN_LOCK_MARGIN_MS}.
 * A lock that expired while its holder's request was still allowed to run would let another process
 * take it and send a second assertion to a slow token endpoint (and make the processes waiting for
 * the token give up before it came).
 */
export function tokenLockTtlMs(requestTimeoutMs: number): number {
  return requestTimeoutMs + TOKEN_LOCK_MARGIN_MS;
}

/** How long, past a whole lock TTL, a process waiting for another's token keeps waiting. */
const LOCK_WAIT_SLACK_MS = 5_000;

/** Lifetime assumed when a token response has no `expires_in` (SMART requires it; 5 min is typical). */
const DEFAULT_EXPIRES_IN_SECONDS = 300;

/**
 * How long before it expires a token of `lifetimeMs` is renewed: `renewBeforeMs`, but at most a
 * quarter of its lifetime. SMART Backend Services servers issue tokens of a few minutes, some of a
 * minute or less (`expires_in`, https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5):
 * with a fixed 60 s margin such a token would be renewed at once, i.e. fetched for every call.
 */
export function renewalMarginMs(lifetimeMs: number, renewBeforeMs: number): number {
  return Math.min(renewBeforeMs, lifetimeMs / 4);
}
const MAX_AUTH_BODY_BYTES = 1024 * 1024;

/**
 * The scope a token response granted: its `scope` (whitespace-separated, RFC 6749 §3.3), or the scope
 * requested where it has none — RFC 6749 §5.1 (https://www.rfc-editor.org/rfc/rfc6749#section-5.1)
 * makes `scope` OPTIONAL "if identical to the scope requested by the client; otherwise, REQUIRED".
 * A blank or non-string `scope` is read as absent (`invalid` says so, for a warning): a server that
 * grants nothing answers `invalid_scope` rather than a token.
 */
export function grantedScopeOf(responseScope: unknown, requested: string): { scope: string; invalid: boolean } {
  if (typeof responseScope === 'string' && responseScope.trim() !== '') return { scope: responseScope.trim().split(/\s+/).join(' '), invalid: false };
  return { scope: requested, invalid: responseScope !== undefined && responseScope !== null && typeof responseScope !== 'string' };
}

/** A token and the scope granted with it. */
interface Grant {
  readonly token: string;
  readonly scope: string;
}

export class SmartBackendAuth implements AuthStrategy {
  private readonly signer: ClientAssertionSigner;
  private readonly cache: RedisTokenCache;
  private readonly scope: string;
  private readonly renewBeforeMs: number;
  private readonly now: () => number;
  private memory: (Grant & { readonly renewAt: number }) | undefined;
  private inflight: Promise<Grant> | undefined;
  private tokenUrl: Promise<string> | undefined;

  constructor(private readonly options: SmartBackendAuthOptions) {
    const { config } = options;
    this.signer = new ClientAssertionSigner(config.clientId, config.privateKeyJwk);
    this.scope = config.scope ?? DEFAULT_SMART_SCOPE;
    this.renewBeforeMs = options.renewBeforeMs ?? 60_000;
    this.now = options.now ?? Date.now;
    const identity = tokenCacheIdentity(options.baseUrl, config, this.scope);
    this.cache = new RedisTokenCache(options.redis, `${options.keyPrefix}fhir:token:${options.endpointId}:${identity}`, {
      lockTtlMs: tokenLockTtlMs(options.timeoutMs),
      now: this.now,
    });
  }

  async authorization(): Promise<string> {
    return `Bearer ${await this.accessToken()}`;
  }

  /** A valid access token: from memory, Redis, or the token endpoint (single-flight). */
  async accessToken(): Promise<string> {
    return (await this.grant()).token;
  }

  /**
   * The scope granted with the token requests carry now (see {@link grantedScopeOf}): from memory,
   * Redis (stored with the token, so a process that reads a cached token knows it too), or the token
   * endpoint (single-flight, shared with {@link accessToken}).
   * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5
   */
  async grantedScope(): Promise<string> {
    return (await this.grant()).scope;
  }

  private grant(): Promise<Grant> {
    const memory = this.memory;
    if (memory && this.now() < memory.renewAt) return Promise.resolve(memory);
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  async invalidate(refused: string | undefined): Promise<boolean> {
    const token = refused?.replace(/^Bearer /, '');
    if (this.memory && (token === undefined || this.memory.token === token)) this.memory = undefined;
    await this.cache.invalidate(token);
    return true;
  }

  /** The token endpoint, discovered once per instance. */
  tokenEndpoint(): Promise<string> {
    this.tokenUrl ??= this.discover().catch((err: unknown) => {
      this.tokenUrl = undefined;
      throw err;
    });
    return this.tokenUrl;
  }

  /**
   * The token from Redis, or fetched under the cross-process lock. The token endpoint is discovered
   * (once per instance) before the lock is taken, so the lock covers the token request alone, whose
   * deadline its TTL is sized for ({@link tokenLockTtlMs}); a process that has not discovered it and
   * finds another fetching waits for that token without discovering. A process that finds the lock
   * held waits for the token up to a whole lock TTL (plus slack) from then: the holder's request may
   * take that long, and a lock whose holder died expires within it (the waiter then takes it).
   */
  private async obtain(): Promise<Grant> {
    let deadline: number | undefined;
    let pause = 25;
    for (;;) {
      const cached = await this.cache.get(this.renewBeforeMs);
      if (cached) return this.remember(cached);
      await this.refuseWhileHeld();
      if (this.tokenUrl !== undefined || !(await this.cache.isLocked())) {
        const tokenUrl = await this.tokenEndpoint();
        const release = await this.cache.tryLock();
        if (release) {
          try {
            const again = await this.cache.get(this.renewBeforeMs);
            if (again) return this.remember(again);
            await this.refuseWhileHeld();
            return await this.fetchAndStore(tokenUrl);
          } finally {
            await release().catch((err: unknown) => logger.warn('smart token lock release failed', { endpointId: this.options.endpointId, ...errorFields(err) }));
          }
        }
      }
      // Another process is fetching: wait for its token rather than asking the server too.
      deadline ??= this.now() + this.cache.lockTtl + LOCK_WAIT_SLACK_MS;
      if (this.now() > deadline) throw new SmartAuthError('timed out waiting for another process to fetch a token', true);
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 250);
    }
  }

  /**
   * Fails, without asking, while the token endpoint's `Retry-After` runs (recorded by whichever
   * process got it, before it released the fetch lock): the error carries what remains of the delay,
   * so the caller holds the endpoint as it would on the answer itself.
   * @see https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
   */
  private async refuseWhileHeld(): Promise<void> {
    const held = await this.cache.heldUntil();
    if (!held) return;
    const status = held.status !== undefined ? `HTTP ${held.status}, ` : '';
    throw new SmartAuthError(`token endpoint asked to be called again later (${status}Retry-After until ${new Date(held.until).toISOString()})`, true, held.status, undefined, {
      retryAfterMs: held.until - this.now(),
    });
  }

  private remember(cached: CachedToken): Grant {
    const grant = { token: cached.token, scope: cached.scope, renewAt: cached.renewAt };
    this.memory = grant;
    return grant;
  }

  /**
   * One token request to `tokenUrl`, the token endpoint string as published: it is the assertion's
   * `aud` character for character ("the same URL to which this authentication JWT will be posted",
   * https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint),
   * and the POST goes to it as parsed (the request line is the WHATWG serialization of its path and
   * query; `Host` its host and port, lower case, a default port left out).
   */
  private async fetchAndStore(tokenUrl: string): Promise<Grant> {
    const started = this.now();
    const assertion = await this.signer.sign(tokenUrl, started);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    const res = await this.options.transport.buffered(
      {
        method: 'POST',
        url: new URL(tokenUrl),
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        timeoutMs: this.options.timeoutMs,
      },
      MAX_AUTH_BODY_BYTES,
    );
    if (res.status !== 200) {
      const err = tokenError(res, this.now());
      // Kept before the fetch lock is released, so no process waiting on it asks before then.
      if (err.retryAfterMs !== undefined && err.retryAfterMs > 0) await this.cache.hold({ until: this.now() + err.retryAfterMs, status: res.status });
      throw err;
    }
    const parsed = TokenResponse.safeParse(parseJson(res.body));
    if (!parsed.success) throw new SmartAuthError('token response without access_token', true, res.status);
    if (parsed.data.token_type !== undefined && parsed.data.token_type.toLowerCase() !== 'bearer') {
      throw new SmartAuthError('token type is not bearer', false, res.status);
    }
    const expiresIn = parsed.data.expires_in ?? DEFAULT_EXPIRES_IN_SECONDS;
    const expiresAt = started + expiresIn * 1000;
    const granted = grantedScopeOf(parsed.data.scope, this.scope);
    if (granted.invalid) logger.warn('smart token response scope is not a string: the scope requested is assumed', { endpointId: this.options.endpointId });
    const token: CachedToken = {
      token: parsed.data.access_token,
      expiresAt,
      renewAt: expiresAt - renewalMarginMs(expiresIn * 1000, this.renewBeforeMs),
      scope: granted.scope,
    };
    await this.cache.set(token, token.renewAt - this.now());
    logger.info('smart token obtained', { endpointId: this.options.endpointId, durationMs: this.now() - started });
    this.options.onTokenRefreshed?.({ expiresInSeconds: expiresIn });
    return this.remember(token);
  }

  /** Discovery, then the pin: a token endpoint other than the pinned one is never asked. */
  private async discover(): Promise<string> {
    const { baseUrl, transport, guard, timeoutMs, config } = this.options;
    const discovered = await discoverTokenEndpoint({ baseUrl, transport, guard, timeoutMs, now: this.now, ...(config.tokenUrl !== undefined ? { tokenUrl: config.tokenUrl } : {}) });
    if (config.pinnedTokenEndpoint !== undefined) assertPinnedTokenEndpoint(discovered, config.pinnedTokenEndpoint);
    return discovered;
  }
}

/** What {@link discoverTokenEndpoint} needs: the FHIR base and the outbound policy of its endpoint. */
export interface TokenDiscoveryOptions {
  readonly baseUrl: string;
  readonly transport: HttpTransport;
  readonly guard: UrlGuardOptions;
  readonly timeoutMs: number;
  readonly now?: () => number;
  /** A token endpoint given by the registration: used as is (still checked by the URL policy), nothing asked. */
  readonly tokenUrl?: string;
}

/**
 * The token endpoint of a SMART Backend Services server: the `token_endpoint` of
 * `<base>/.well-known/smart-configuration` (https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known),
 * resolved against it ({@link resolveTokenEndpoint}) and held to the endpoint's URL policy. Only an
 * unauthenticated GET is sent: no credential, assertion or token.
 *
 * The string returned is the one published (or registered as `tokenUrl`), unchanged when absolute:
 * the URL policy checks its parsed form, but the string itself is not re-serialized, for it becomes
 * the client assertion's `aud`, "the FHIR authorization server's token URL (the same URL to which
 * this authentication JWT will be posted)"
 * (https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint),
 * which authorization servers commonly compare with their configured `token_endpoint` as strings.
 * WHATWG serialization would change it (`:443` dropped, the host lower-cased, `/` added after a bare
 * origin, `{` → `%7B`, dot segments removed). It is also the string pinned for the endpoint.
 * @throws SmartAuthError (retryable for 429/5xx and a body that is not JSON, with the `Retry-After` asked for)
 */
export async function discoverTokenEndpoint(options: TokenDiscoveryOptions): Promise<string> {
  const now = options.now ?? Date.now;
  let candidate: string;
  if (options.tokenUrl !== undefined) {
    candidate = options.tokenUrl;
  } else {
    const url = new URL('.well-known/smart-configuration', baseWithSlash(options.baseUrl));
    const res = await options.transport.buffered({ method: 'GET', url, headers: { accept: 'application/json' }, timeoutMs: options.timeoutMs }, MAX_AUTH_BODY_BYTES);
    if (res.status !== 200) {
      const retryable = res.status === 429 || res.status >= 500;
      throw new SmartAuthError('smart-configuration not available', retryable, res.status, undefined, { retryAfterMs: retryAfterOf(res, retryable, now()) });
    }
    const json = parseJson(res.body);
    // A body that is not JSON at all (cut off, an HTML error page) is a passing fault; JSON
    // without a token endpoint is the server's configuration and will not change on a retry.
    if (json === undefined) throw new SmartAuthError('smart-configuration is not JSON', true, res.status);
    const parsed = SmartConfiguration.safeParse(json);
    if (!parsed.success) throw new SmartAuthError('smart-configuration has no token_endpoint', false, res.status);
    candidate = resolveTokenEndpoint(parsed.data.token_endpoint, url);
  }
  try {
    await assertAllowedEndpointUrl(candidate, options.guard);
    return candidate;
  } catch (err) {
    throw new SmartAuthError('token endpoint URL refused', false, undefined, undefined, { cause: err });
  }
}

/**
 * Refuses a discovered token endpoint that is not the one pinned for the endpoint (OAuth mix-up):
 * care teams commonly share one client id and key across sites, so a FHIR server whose discovery
 * names another site's token endpoint would get a valid token minted there, and the token, presented
 * to it, is a credential for that other site (RFC 6750 §5.1 token redirect,
 * https://www.rfc-editor.org/rfc/rfc6750#section-5.1; RFC 9700 §4.4,
 * https://www.rfc-editor.org/rfc/rfc9700#section-4.4). Permanent: an admin confirms a real move by
 * PATCHing the endpoint's `baseUrl` or `auth`, which pins what discovery names then.
 *
 * `discovered` is the string {@link discoverTokenEndpoint} returns, the very one then signed as `aud`
 * and posted to; the pin is what it returned at registration. They are compared as the URLs they
 * parse to (WHATWG: scheme and host case, a default port, dot segments, percent-encoding): what the
 * pin guards is where the assertion goes, and two spellings of one URL name the same token endpoint.
 * Pins recorded before the published string was kept are such re-serialized forms, and stay valid.
 * @throws SmartAuthError (not retryable) naming both URLs without their query (token endpoints are public; errors carry no query strings, errors.ts)
 */
export function assertPinnedTokenEndpoint(discovered: string, pinned: string): void {
  if (sameUrl(discovered, pinned)) return;
  throw new SmartAuthError(
    // No quote characters: error messages are recorded with what they quote scrubbed (log.ts).
    `discovery names the token endpoint ${withoutQuery(discovered)}, not ${withoutQuery(pinned)} pinned for this endpoint: nothing was sent to it; ` +
      'if the EHR really moved its token endpoint, an admin confirms it with a PATCH of the endpoint baseUrl or auth, which pins the new one',
    false,
  );
}

function withoutQuery(url: string): string {
  return URL.canParse(url) ? `${new URL(url).origin}${new URL(url).pathname}` : url;
}

/** Whether two URL strings parse to the same URL (any two strings that do not parse: when equal). */
function sameUrl(a: string, b: string): boolean {
  return URL.canParse(a) && URL.canParse(b) ? new URL(a).href === new URL(b).href : a === b;
}

/**
 * What a cached token is bound to, hashed into its Redis key: the FHIR server it is for (the base
 * URL, normalized as requests resolve it), the token endpoint named in the registration (empty when
 * discovered, which the base URL then determines), the pinned token endpoint (a re-pin asks the newly
 * pinned one), the client id, the signing key's `kid` and the scope asked for.
 *
 * A bearer token is a credential for the resource server it was issued for: anyone holding it may use
 * it (RFC 6750 §1.2), and one presented to another server is the "token redirect" threat (RFC 6750
 * §5.1–5.2, https://www.rfc-editor.org/rfc/rfc6750#section-5.1). An endpoint keeps its id when an
 * admin moves it to another EHR (`PATCH /api/endpoints/:id` with a new `baseUrl`, same client and
 * key); without the URLs in the key, the old EHR's still-valid token would be sent to the new host
 * (the capabilities refresh right after the edit does so at once) until it expired or was refused.
 */
function tokenCacheIdentity(baseUrl: string, config: Pick<SmartBackendAuthConfig, 'clientId' | 'privateKeyJwk' | 'tokenUrl' | 'pinnedTokenEndpoint'>, scope: string): string {
  // The pin only when there is one, so the tokens cached for an endpoint not pinned yet keep their key.
  const pinned = config.pinnedTokenEndpoint !== undefined ? [config.pinnedTokenEndpoint] : [];
  return createHash('sha256')
    .update([baseWithSlash(baseUrl).href, config.tokenUrl ?? '', ...pinned, config.clientId, config.privateKeyJwk.kid ?? '', scope].join('\n'))
    .digest('hex')
    .slice(0, 16);
}

/**
 * The `token_endpoint` of a SMART configuration
 * (https://hl7.org/fhir/smart-app-launch/conformance.html#metadata), resolved against the document
 * it came from (RFC 3986 §5): SMART asks for an absolute URL, but servers behind gateways publish a
 * path (`/oauth2/token`). An absolute URL is returned unchanged; one that cannot be resolved is left
 * for the URL guard to refuse. The result passes the same URL policy as the endpoint.
 */
export function resolveTokenEndpoint(tokenEndpoint: string, discoveryUrl: URL): string {
  if (URL.canParse(tokenEndpoint)) return tokenEndpoint;
  return URL.canParse(tokenEndpoint, discoveryUrl.href) ? new URL(tokenEndpoint, discoveryUrl).toString() : tokenEndpoint;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * What an RFC 6749 §5.2 error code usually means for a SMART Backend Services client, for the
 * integration engineer reading the endpoint's `capabilitiesError` or a pull's last error.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification
 */
const OAUTH_HINTS: Readonly<Record<string, string>> = {
  invalid_client: 'the EHR does not know this client id, or cannot verify our signature: register our public key there (GET /.well-known/jwks.json)',
  unauthorized_client: 'the client is registered but may not use client_credentials (a backend services registration is needed)',
  invalid_scope: 'the EHR does not grant the scope asked for: change the endpoint\'s scope or the client\'s registration',
  invalid_grant: 'the client assertion was refused: check the clock of this host and the token endpoint (aud)',
  invalid_request: 'the EHR found the token request malformed',
};

/**
 * RFC 6749 §5.2 errors are permanent (a registration problem); 429 and 5xx may pass, after the
 * `Retry-After` they name, if any.
 */
function tokenError(res: BufferedResponse, now: number): SmartAuthError {
  const { status } = res;
  const oauth = OAuthError.safeParse(parseJson(res.body));
  const retryable = status === 429 || status >= 500;
  // Only a code-shaped value is kept: it may reach logs and error displays.
  const code = oauth.success && /^[a-z_]{1,40}$/.test(oauth.data.error) ? oauth.data.error : undefined;
  const hint = code !== undefined ? OAUTH_HINTS[code] : undefined;
  return new SmartAuthError(`token endpoint refused the request (HTTP ${status}${code ? `, ${code}` : ''})${hint ? `: ${hint}` : ''}`, retryable, status, code, {
    retryAfterMs: retryAfterOf(res, retryable, now),
  });
}

/**
 * The delay a retryable answer of the token endpoint (or of discovery) asks for with `Retry-After`
 * (RFC 9110 §10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): it is part of the
 * endpoint, so the client honours it as the FHIR server's (see RetryPolicy). Ignored on a
 * refusal, which stays permanent.
 */
function retryAfterOf(res: BufferedResponse, retryable: boolean, now: number): number | undefined {
  return retryable ? parseRetryAfter(res.headers['retry-after'], now, res.headers.date) : undefined;
}
