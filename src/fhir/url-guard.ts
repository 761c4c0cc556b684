import dns, { type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { defaultAddressPolicy, type AddressPolicy } from './address-policy';
import { FhirNetworkError, OffOriginUrlError, UrlRefusedError } from './errors';

/**
 * SSRF guard for outbound FHIR traffic.
 *
 * 1. Only a registered endpoint's base URL is contacted, checked by {@link assertAllowedEndpointUrl}:
 *    `https:` (or `http:` for sandboxes with `allowInsecureHttp`), no credentials in the URL, and
 *    every address the host resolves to allowed by the {@link AddressPolicy}.
 * 2. URLs that come from responses (Bundle `next` links, Attachment.url, redirect `Location`)
 *    must stay on the endpoint's origin: {@link assertSameOrigin}.
 * 3. The connection itself resolves names through {@link createGuardedLookup}, which applies the
 *    same address policy to the very answer the socket connects to. The check and the connection
 *    use one DNS answer, so DNS rebinding between check and connect (TOCTOU) does not get through.
 *    IP-literal hosts skip DNS in `net.connect`; step 1 checks them before any request.
 */

/** The refusal of a host name with no address (NXDOMAIN): permanent for an EHR endpoint, worth retrying for a webhook subscriber mid-redeploy. */
export const HOST_DOES_NOT_RESOLVE = 'host does not resolve';

/** Resolves a host name to all its addresses (default: `dns.lookup(host, { all: true })`). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

/** How an endpoint's URLs are checked. `allowInsecureHttp` comes from the endpoint registration. */
export interface UrlGuardOptions {
  /** Allow `http:`; also allows loopback addresses in the default policy (local sandboxes). */
  readonly allowInsecureHttp: boolean;
  /** Address ranges; default {@link defaultAddressPolicy}. */
  readonly addressPolicy?: AddressPolicy;
  /** DNS resolver; default `dns.lookup` with `all: true`. */
  readonly resolve?: HostResolver;
}

const defaultResolve: HostResolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** `scheme://host:port` of a URL, with default ports made explicit. */
export function originOf(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
  return `${url.protocol}//${url.hostname.toLowerCase()}:${port}`;
}

/** The base URL with a trailing slash, so relative references resolve under it (FHIR base semantics). */
export function baseWithSlash(baseUrl: string): URL {
  const base = new URL(baseUrl);
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
  base.search = '';
  base.hash = '';
  return base;
}

/**
 * Resolves `candidateUrl` (absolute, or relative to the FHIR base) and checks that its scheme, host
 * and port equal the endpoint's. Returns the resolved URL.
 *
 * @throws OffOriginUrlError when the origin differs (or the URL does not parse).
 */
export function assertSameOrigin(
  baseUrl: string,
  candidateUrl: string,
  context: OffOriginUrlError['context'] = 'url',
): URL {
  const base = baseWithSlash(baseUrl);
  let resolved: URL;
  try {
    resolved = new URL(candidateUrl, base);
  } catch {
    throw new OffOriginUrlError(context, 'unparsable', originOf(base));
  }
  if (resolved.username || resolved.password || originOf(resolved) !== originOf(base)) {
    throw new OffOriginUrlError(context, originOf(resolved), originOf(base));
  }
  resolved.hash = '';
  return resolved;
}

/** A `next` link as {@link rebaseOnEndpointOrigin} moves it. */
export interface RebasedLink {
  readonly url: URL;
  /** The origin the link named, when it was another one. */
  readonly movedFrom?: string;
  /** Moved under the endpoint's base from the base the server declares (else the path was kept). */
  readonly pathMapped?: boolean;
}

/**
 * A `next` link moved onto the endpoint's origin: resolved as {@link assertSameOrigin} does, then, when
 * it names another origin, moved under the endpoint's base URL when it lies under the base the server
 * declares for itself (`declaredBaseUrl`: a proxy mapping `/fhir/r4` to the server's `/fhir`), else the
 * same path and query on the endpoint's scheme, host and port. For an EHR behind a reverse proxy that
 * writes its internal address (or `http:` for `https:`) into its links, on endpoints registered with
 * `rebaseNextLinks`: the request still goes to the endpoint's origin only.
 * @returns the URL to request, and the origin the link named when it was moved (and whether its path was mapped)
 * @throws OffOriginUrlError for a link that does not parse or carries credentials
 */
export function rebaseOnEndpointOrigin(baseUrl: string, candidateUrl: string, declaredBaseUrl?: string): RebasedLink {
  const base = baseWithSlash(baseUrl);
  let resolved: URL;
  try {
    resolved = new URL(candidateUrl, base);
  } catch {
    throw new OffOriginUrlError('next-page', 'unparsable', originOf(base));
  }
  if (resolved.username || resolved.password || (resolved.protocol !== 'http:' && resolved.protocol !== 'https:')) {
    throw new OffOriginUrlError('next-page', originOf(resolved), originOf(base));
  }
  resolved.hash = '';
  if (originOf(resolved) === originOf(base)) return { url: resolved };
  const movedFrom = originOf(resolved);
  const under = declaredBaseUrl !== undefined ? pathUnder(resolved, declaredBaseUrl) : undefined;
  if (under !== undefined) return { url: new URL(`${base.pathname.replace(/\/$/, '')}${under}${resolved.search}`, base.origin), movedFrom, pathMapped: true };
  return { url: new URL(`${resolved.pathname}${resolved.search}`, base.origin), movedFrom, pathMapped: false };
}

/** The rest of `url`'s path below `declaredBase` (`''` or `/…`) when `url` lies under it (same origin). */
function pathUnder(url: URL, declaredBase: string): string | undefined {
  if (!URL.canParse(declaredBase)) return undefined;
  const declared = new URL(declaredBase);
  if (originOf(declared) !== originOf(url)) return undefined;
  const prefix = declared.pathname.replace(/\/$/, '');
  if (url.pathname === prefix) return '';
  return url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length) : undefined;
}

/**
 * Whether a registration's `allowInsecureHttp` holds: never in production, where a row stored with it
 * earlier (before production refused it) is held to https and public addresses all the same.
 */
export function insecureHttpAllowed(registered: boolean, production: boolean | undefined): boolean {
  return registered && production !== true;
}

/**
 * Checks an endpoint (or token endpoint) URL before any connection: scheme, no credentials,
 * and every resolved address allowed by the policy.
 *
 * @throws UrlRefusedError; FhirNetworkError (retryable) when DNS fails temporarily
 */
export async function assertAllowedEndpointUrl(url: string, options: UrlGuardOptions): Promise<URL> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UrlRefusedError('unparsable URL');
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && options.allowInsecureHttp)) {
    throw new UrlRefusedError(parsed.protocol === 'http:' ? 'https required' : 'unsupported scheme');
  }
  if (parsed.username || parsed.password) throw new UrlRefusedError('credentials in URL');
  const policy = options.addressPolicy ?? defaultAddressPolicy(options);
  const host = stripBrackets(parsed.hostname);
  if (isIP(host) !== 0) {
    assertAddressAllowed(policy, host);
    return parsed;
  }
  let answers: LookupAddress[];
  try {
    answers = await (options.resolve ?? defaultResolve)(host);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOTFOUND') throw new UrlRefusedError(HOST_DOES_NOT_RESOLVE);
    // Temporary DNS trouble (EAI_AGAIN, timeouts): worth another try later.
    throw new FhirNetworkError('dns lookup failed', typeof code === 'string' ? code : undefined, true, true, { cause: err });
  }
  if (answers.length === 0) throw new UrlRefusedError(HOST_DOES_NOT_RESOLVE);
  for (const answer of answers) assertAddressAllowed(policy, answer.address);
  return parsed;
}

function assertAddressAllowed(policy: AddressPolicy, address: string): void {
  const decision = policy.check(address);
  if (!decision.allowed) throw new UrlRefusedError(`address in ${decision.kind} range`);
}

/**
 * Resolves `hostname` and refuses it (an error with code {@link ADDRESS_REFUSED_CODE}, as
 * {@link createGuardedLookup} gives a refused connection) when any address is outside the policy:
 * the check made before a request is tunnelled through an outbound proxy, which connects by name.
 * DNS errors pass through with their codes (ENOTFOUND, EAI_AGAIN).
 */
export async function assertHostAllowed(hostname: string, policy: AddressPolicy, resolve: HostResolver = defaultResolve): Promise<void> {
  const host = stripBrackets(hostname);
  const answers = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await resolve(host);
  if (answers.length === 0) throw Object.assign(new Error('host does not resolve'), { code: 'ENOTFOUND' });
  for (const answer of answers) {
    const decision = policy.check(answer.address);
    if (!decision.allowed) throw Object.assign(new Error(`address in ${decision.kind} range refused`), { code: ADDRESS_REFUSED_CODE });
  }
}

/** Error code of a connection refused by {@link createGuardedLookup}. */
export const ADDRESS_REFUSED_CODE = 'ERR_FHIR_ADDRESS_REFUSED';

/**
 * A `lookup` for `net.connect`/`tls.connect` (undici `connect: { lookup }`) that refuses the
 * connection when any resolved address is outside the policy, and otherwise hands the socket the
 * same, checked answer: the connection is pinned to the addresses that were checked.
 */
export function createGuardedLookup(policy: AddressPolicy, resolve: HostResolver = defaultResolve): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (answers) => {
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const usable = family === 4 || family === 6 ? answers.filter((a) => a.family === family) : answers;
        for (const answer of answers) {
          const decision = policy.check(answer.address);
          if (!decision.allowed) {
            const err = Object.assign(new Error(`address in ${decision.kind} range refused`), { code: ADDRESS_REFUSED_CODE });
            callback(err, '', 0);
            return;
          }
        }
        const first = usable[0];
        if (!first) {
          callback(Object.assign(new Error('host does not resolve'), { code: 'ENOTFOUND' }), '', 0);
        } else if (options.all) {
          callback(null, usable);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
