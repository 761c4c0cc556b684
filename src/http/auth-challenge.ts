/**
 * The `WWW-Authenticate: Bearer` challenges of our answers (RFC 6750 §3, §3.1).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @packageDocumentation
 */
import { HttpProblem } from './problem';

/** The protection space every challenge names (RFC 6750 §3 `realm`). */
export const AUTH_REALM = 'second-opinion-bridge';

/**
 * The value of a `scope` auth-param (RFC 6750 §3: space-delimited scope tokens, each made of
 * `%x21 / %x23-5B / %x5D-7E`); tokens with other characters are left out, and none at all leaves the
 * parameter out.
 */
function scopeParam(scope: readonly string[]): string {
  const tokens = scope.filter((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s));
  return tokens.length > 0 ? `, scope="${tokens.join(' ')}"` : '';
}

/**
 * A 403 for a caller whose bearer token was verified but does not carry what the route needs (a role,
 * or the right kind of scoped token): `WWW-Authenticate: Bearer error="insufficient_scope"`, with
 * `scope` naming what would be let through when known, so a client can tell "ask for a token with more
 * authority" from "this token is bad" (401 `invalid_token`). The body stays the route's problem (or
 * OperationOutcome on FHIR routes): `wwwAuthenticate` is turned into the header by the error handler.
 * @param scope the roles or scopes that would be accepted (any one of them); empty when not known
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export function insufficientScope(detail: string, scope: readonly string[] = []): HttpProblem {
  const challenge = `Bearer realm="${AUTH_REALM}", error="insufficient_scope"${scopeParam(scope)}`;
  return new HttpProblem(403, 'Forbidden', detail, [], { wwwAuthenticate: challenge });
}
