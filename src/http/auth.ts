import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { AuthConfig } from '../config';
import { HttpProblem } from './problem';

/** The roles a caller can hold. `ehr` is for EHR systems exchanging FHIR with us. */
export const API_ROLES = ['admin', 'case_manager', 'specialist', 'ehr'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface Principal {
  /** Subject of the token: a staff user id or a system client id (not PHI). */
  readonly sub: string;
  readonly roles: readonly ApiRole[];
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export type TokenVerifier = (token: string) => Promise<Principal>;

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
    const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(config.jwksUrl));
    verify = async (token) => (await jwtVerify(token, jwks, { ...options, algorithms: ['RS256', 'ES256'] })).payload;
  } else if (config.jwtSecret) {
    const secret = new TextEncoder().encode(config.jwtSecret);
    verify = async (token) => (await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] })).payload;
  } else {
    throw new Error('auth: neither a JWT secret nor a JWKS URL is configured');
  }
  return async (token) => {
    const payload = await verify(token);
    return { sub: String(payload.sub), roles: rolesFrom(payload[config.rolesClaim]) };
  };
}

function rolesFrom(claim: unknown): ApiRole[] {
  const values = Array.isArray(claim) ? claim : typeof claim === 'string' ? claim.split(/[\s,]+/) : [];
  return values.filter((v): v is ApiRole => typeof v === 'string' && (API_ROLES as readonly string[]).includes(v));
}

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', detail, [], { wwwAuthenticate: 'Bearer realm="second-opinion-bridge"' });
}

/** Express middleware: 401 unless a valid bearer token is presented; sets `req.principal`. */
export function authenticate(verify: TokenVerifier) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1]) {
      next(unauthorized('An Authorization: Bearer <token> header is required.'));
      return;
    }
    try {
      req.principal = await verify(match[1]);
      next();
    } catch {
      next(unauthorized('The bearer token is invalid or expired.'));
    }
  };
}

/** Express middleware: 403 unless the principal holds one of `roles`. */
export function requireRole(roles: readonly ApiRole[]) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const held = req.principal?.roles ?? [];
    if (roles.some((role) => held.includes(role))) {
      next();
      return;
    }
    next(new HttpProblem(403, 'Forbidden', `This action needs one of the roles: ${roles.join(', ')}.`));
  };
}
