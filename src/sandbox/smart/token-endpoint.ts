/**
 * The OAuth token endpoint of SMART Backend Services: `POST`, form-encoded
 * `grant_type=client_credentials`, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
 * `client_assertion=<JWT>`, `scope=<system scopes>`. Answers an opaque, short-lived bearer token with
 * the scopes granted (requested ∩ allowed for the client), or an OAuth error
 * `{error, error_description}`: 400 `invalid_request` / `unsupported_grant_type` / `invalid_scope`,
 * 401 `invalid_client` for any problem with the assertion, as SMART requires.
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
import { headerValue, type SandboxRequest } from '../http/sandbox-request';
import { jsonResponse, type SandboxResponse } from '../http/sandbox-response';
import type { AccessTokenStore } from './access-tokens';
import { verifyClientAssertion, type AssertionVerifierOptions } from './client-assertion-verifier';
import { ScopeSet } from './scopes';

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface TokenEndpointOptions extends AssertionVerifierOptions {
  readonly tokens: AccessTokenStore;
  readonly tokenLifetimeSeconds: number;
}

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

export async function handleTokenRequest(req: SandboxRequest, options: TokenEndpointOptions): Promise<SandboxResponse> {
  if (req.method !== 'POST') {
    return { ...oauthError(400, 'invalid_request', 'Use POST'), status: 405 };
  }
  const contentType = headerValue(req.headers, 'content-type') ?? '';
  if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    return oauthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(req.body.toString('utf8'));
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  }
  if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION_TYPE) {
    return oauthError(400, 'invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`);
  }
  const assertion = form.get('client_assertion');
  if (!assertion) {
    return oauthError(400, 'invalid_request', 'client_assertion is required');
  }
  const requestedScope = form.get('scope');
  if (!requestedScope?.trim()) {
    return oauthError(400, 'invalid_request', 'scope is required');
  }
  const check = await verifyClientAssertion(assertion, form.get('client_id') ?? undefined, options);
  if (!check.ok) {
    return oauthError(401, 'invalid_client', check.description);
  }
  const { scopes: requested } = ScopeSet.parse(requestedScope);
  const granted = new ScopeSet(requested.scopes.filter((scope) => check.client.allowedScopes.covers(scope)));
  if (granted.scopes.length === 0) {
    return oauthError(400, 'invalid_scope', `None of the requested scopes can be granted: ${requestedScope}`);
  }
  const { token } = options.tokens.issue(check.client.clientId, granted, options.tokenLifetimeSeconds);
  return jsonResponse(
    200,
    { access_token: token, token_type: 'bearer', expires_in: options.tokenLifetimeSeconds, scope: granted.toString() },
    NO_STORE
  );
}

/** An OAuth 2.0 error response (RFC 6749 §5.2). */
export function oauthError(status: number, error: string, description: string): SandboxResponse {
  return jsonResponse(status, { error, error_description: description }, NO_STORE);
}
