import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { AuthConfig } from '../config';
import { errorFields, logger } from '../log';
import { AUTH_REALM, insufficientScope } from './auth-challenge';
import { HttpProblem } from './problem';

/** The roles a caller can hold. `ehr` is for EHR systems exchanging FHIR with us. */
export const API_ROLES = ['admin', 'case_manager', 'specialist', 'ehr'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface Principal {
  /** Subject of the token: a staff user id or a system client id (not PHI). */
  readonly sub: string;
  readonly roles: readonly ApiRole[];
  /**
   * Set when the caller used a scoped token instead of a staff JWT (e.g. `case-upload:<caseId>` for a
   * family portal's upload token): it then holds no role, and only routes that accept that kind of
   * token let it through.
   */
  readonly scope?: string;
}

/** The role a timeline event names for who acted (the token's first). */
export function primaryRole(principal: Principal): string | undefined {
  return principal.roles[0];
}

/**
 * A second kind of bearer token a route accepts besides staff JWTs (see `RouteDefinition.scopedToken`).
 * Tokens it does not recognize go to the JWT verifier as usual.
 */
export interface ScopedTokenAuth {
  /** Whether `token` is of this kind, by its shape alone (no I/O). */
  recognizes(token: string): boolean;
  /** Verifies the token for this request: a principal with `scope`, or an HttpProblem (401 unknown or expired, 403 out of scope). */
  verify(token: string, req: Request): Promise<Principal>;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export type TokenVerifier = (token: string) => Promise<Principal>;

/**
 * The identity provider's key set (`AUTH_JWKS_URL`) could not be read — unreachable, timed out, not
 * 200, not a JWKS — so the token was not judged at all. {@link authenticate} answers 503 with
 * `Retry-After`, not 401: a 401 tells the client its token is bad (RFC 6750 §3.1 `invalid_token`),
 * and an EHR or a staff client would throw away a valid token and sign in again, against an
 * identity provider that is down, while our monitoring saw no server error.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4
 */
export class KeySetUnavailableError extends Error {
  constructor(cause: unknown) {
    super('auth: the JSON Web Key Set of the identity provider could not be read', { cause });
    this.name = 'KeySetUnavailableError';
  }
}

/** Seconds a client is asked to wait (`Retry-After`) when the identity provider's keys cannot be read. */
export const KEY_SET_RETRY_AFTER_SECONDS = 5;

/**
 * The remote JWKS getter, with its failures to *read* the key set told apart from verdicts on the
 * token: no key with the token's `kid`, several, or an `alg` no key can have stay token errors (401);
 * anything else the getter throws (network error, timeout, non-200, not JSON, not a JWKS) becomes a
 * {@link KeySetUnavailableError}.
 */
function distinguishKeySetFailures(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw new KeySetUnavailableError(err);
    }
  };
}

/**
 * Verifies `Authorization: Bearer <JWT>` with jose: HS256 with a shared secret (development),
 * or RS256/ES256 against the identity provider's JWKS (production). `exp` is always required.
 */
export function createTokenVerifier(config: AuthConfig): TokenVerifier {
  const options = {
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['exp', 'sub'],
  };
  let verify: (token: string) => Promise<JWTPayload>;
  if (config.jwksUrl) {
    const jwks: JWTVerifyGetKey = distinguishKeySetFailures(createRemoteJWKSet(new URL(config.jwksUrl)));
    verify = async (token) => (await jwtVerify(token, jwks, { ...options, algorithms: ['RS256', 'ES256'] })).payload;
  } else if (config.jwtSecret) {
    const secret = new TextEncoder().encode(config.jwtSecret);
    verify = async (token) => (await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] })).payload;
  } else {
    throw new Error('auth: neither a JWT secret nor a JWKS URL is configured');
  }
  return async (token) => {
    const payload = await verify(token);
    return { sub: subjectOf(payload), roles: rolesFrom(payload[config.rolesClaim]) };
  };
}

/**
 * The token's `sub`: a non-empty string (RFC 7519 §4.1.2, a StringOrURI). jose checks only that the
 * claim is present; coercing another type would make `["dr-a"]` the subject `dr-a` (whom the
 * specialist directory and the EHR bindings know), and an empty one would name nobody in the audit.
 * @throws Error for any other value (the caller answers 401)
 */
function subjectOf(payload: JWTPayload): string {
  const sub: unknown = payload.sub;
  if (typeof sub !== 'string' || sub.trim() === '') throw new Error('auth: the token has no usable sub claim');
  return sub;
}

function rolesFrom(claim: unknown): ApiRole[] {
  const values = Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(/[\s,]+/) : [];
  return values.filter((v): v is ApiRole => typeof v === 'string' && (API_ROLES as readonly string[]).includes(v));
}

/**
 * A 401 problem with the `WWW-Authenticate: Bearer` challenge. `tokenRefused`: a bearer token was
 * presented and refused (malformed, forged, expired, unknown): the challenge says
 * `error="invalid_token"`, so the client knows to get a new token; without one (no or another kind of
 * credentials) it carries no error code.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export function unauthorized(detail: string, tokenRefused = false): HttpProblem {
  const challenge = `Bearer realm="${AUTH_REALM}"${tokenRefused ? ', error="invalid_token"' : ''}`;
  return new HttpProblem(401, 'Unauthorized', detail, [], { wwwAuthenticate: challenge });
}

/**
 * The 503 of a token that could not be judged because the identity provider's keys could not be read
 * ({@link KeySetUnavailableError}); the cause goes to the log only (it names internal hosts).
 */
function keySetUnavailable(res: Response, err: KeySetUnavailableError): HttpProblem {
  logger.warn('bearer token not verified: the identity provider key set could not be read', { event: 'auth.jwks_unavailable', ...errorFields(err.cause) });
  res.setHeader('Retry-After', String(KEY_SET_RETRY_AFTER_SECONDS));
  return new HttpProblem(
    503,
    'Service Unavailable',
    "The bearer token could not be verified: the signing keys of the identity provider cannot be read right now. The token was not judged; send the request again shortly with the same token.",
  );
}

/**
 * A scoped token of a kind the route does not accept (an upload token on a staff route): verified by
 * its own kind all the same, so that an unknown or expired one stays a 401 (`invalid_token`) while a
 * valid one — for this case or another — goes on as a principal with its scope and no role, which
 * {@link requireRole} refuses with 403 `insufficient_scope` (RFC 6750 §3.1: the token is good, it
 * lacks the authority the route needs). Its verifier's own 403 (a token of another case) is a valid
 * token too; the principal it put on the request for the audit trail is kept.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
async function foreignScopedPrincipal(kind: ScopedTokenAuth, token: string, req: Request): Promise<Principal | undefined> {
  try {
    const principal = await kind.verify(token, req);
    return { ...principal, roles: [] };
  } catch (err) {
    if (err instanceof HttpProblem && err.status === 403) return req.principal ? { ...req.principal, roles: [] } : undefined;
    throw err instanceof HttpProblem ? err : unauthorized('The bearer token is invalid or expired.', true);
  }
}

/**
 * Express middleware: 401 unless a valid bearer token is presented; sets `req.principal`. With
 * `scoped`, a token of that kind is verified by it instead (its 401/403 passed on as is). A token of
 * another kind of `others` (the scoped tokens other routes accept) is verified by its kind: a valid
 * one is let on without any role, for {@link requireRole} to answer 403 `insufficient_scope`, not a
 * 401 telling the client its token is bad ({@link foreignScopedPrincipal}). A token that could not be
 * judged because the identity provider's keys cannot be read is a 503 with `Retry-After`
 * ({@link KeySetUnavailableError}), not a 401 telling the client to drop it.
 */
export function authenticate(verify: TokenVerifier, scoped?: ScopedTokenAuth, others: readonly ScopedTokenAuth[] = []) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1]) {
      next(unauthorized('An Authorization: Bearer <token> header is required.'));
      return;
    }
    if (scoped?.recognizes(match[1])) {
      try {
        req.principal = await scoped.verify(match[1], req);
        next();
      } catch (err) {
        next(err instanceof HttpProblem ? err : unauthorized('The bearer token is invalid or expired.', true));
      }
      return;
    }
    const token = match[1];
    const foreign = others.find((kind) => kind !== scoped && kind.recognizes(token));
    if (foreign) {
      try {
        const principal = await foreignScopedPrincipal(foreign, token, req);
        if (principal) req.principal = principal;
        // Without a principal (a verifier that refused with 403 and named none), requireRole refuses all the same.
        else delete req.principal;
        next();
      } catch (err) {
        next(err);
      }
      return;
    }
    try {
      req.principal = await verify(match[1]);
      next();
    } catch (err) {
      next(err instanceof KeySetUnavailableError ? keySetUnavailable(res, err) : unauthorized('The bearer token is invalid or expired.', true));
    }
  };
}

/**
 * Express middleware: 403 unless the principal holds one of `roles`, or (with `allowScoped`, on routes
 * that accept a scoped token) was authenticated by that scoped token. The 403 carries
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="<the roles>"` (RFC 6750 §3.1): the
 * token is good, it lacks the authority (any one of the roles named).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export function requireRole(roles: readonly ApiRole[], allowScoped = false) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (allowScoped && req.principal?.scope !== undefined) {
      next();
      return;
    }
    const held = req.principal?.roles ?? [];
    if (roles.some((role) => held.includes(role))) {
      next();
      return;
    }
    const scope = req.principal?.scope;
    const detail =
      scope !== undefined
        ? `This route does not take a ${scope.split(':')[0] ?? 'scoped'} token (it opens only the routes of its scope); it needs a token with one of the roles: ${roles.join(', ')}.`
        : `This action needs one of the roles: ${roles.join(', ')}.`;
    next(insufficientScope(detail, roles));
  };
}
