/**
 * Bearer-token checks on FHIR routes: 401 without a valid, unexpired token (with a
 * `WWW-Authenticate: Bearer` challenge), 403 when the token's scopes do not cover the resource type
 * and interaction.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#access-token-usage
 */
import { headerValue, type SandboxRequest } from '../http/sandbox-request';
import { outcomeResponse, simpleOutcome, type SandboxResponse } from '../http/sandbox-response';
import type { AccessTokenStore } from './access-tokens';
import type { Permission } from './scopes';

/** What the caller may do. */
export interface AccessPolicy {
  allows(resourceType: string, permission: Permission): boolean;
  /** Identifies what the policy allows (cached results are only shared between equal policies). */
  readonly fingerprint: string;
}

export const ALLOW_ALL: AccessPolicy = { allows: () => true, fingerprint: '*' };

export type AuthResult = { ok: true; policy: AccessPolicy } | { ok: false; response: SandboxResponse };

export function authenticate(req: SandboxRequest, tokens: AccessTokenStore): AuthResult {
  const authorization = headerValue(req.headers, 'authorization') ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) {
    return { ok: false, response: unauthorized('Bearer realm="sandbox"', 'An access token is required') };
  }
  const check = tokens.check(match[1]);
  if (check.status === 'expired') {
    return { ok: false, response: expiredToken() };
  }
  if (check.status === 'unknown') {
    return {
      ok: false,
      response: unauthorized('Bearer realm="sandbox", error="invalid_token", error_description="Unknown access token"', 'Unknown access token'),
    };
  }
  return { ok: true, policy: check.grant.scopes };
}

/** 401 for an expired token (also what the `expired-token` fault answers). */
export function expiredToken(): SandboxResponse {
  return unauthorized('Bearer realm="sandbox", error="invalid_token", error_description="The access token expired"', 'The access token expired');
}

/** 403 when the scopes do not allow `permission` on `resourceType`. */
export function insufficientScope(resourceType: string, permission: Permission): SandboxResponse {
  const text = `The access token's scopes do not allow '${permission}' on ${resourceType}`;
  return outcomeResponse(403, simpleOutcome('error', 'forbidden', text), {
    'www-authenticate': `Bearer realm="sandbox", error="insufficient_scope", error_description="${text.replace(/"/g, "'")}"`,
  });
}

function unauthorized(challenge: string, text: string): SandboxResponse {
  return outcomeResponse(401, simpleOutcome('error', 'login', text), { 'www-authenticate': challenge });
}
