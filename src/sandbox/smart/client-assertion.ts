/**
 * The client side of SMART Backend Services, for tests and demos of the sandbox: sign a client
 * assertion and exchange it for an access token. (The service's own FHIR client lives in src/fhir.)
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token
 */
import { randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import { importJWK, SignJWT } from 'jose';
import { JWT_BEARER_ASSERTION_TYPE } from './token-endpoint';

export interface ClientAssertionInput {
  readonly clientId: string;
  /** The token endpoint URL (the assertion's `aud`). */
  readonly tokenUrl: string;
  /** Private JWK with `alg` (RS384 or ES384) and `kid`. */
  readonly privateJwk: JWK;
  /** Lifetime; default 300 s (the most SMART allows). Negative for an already expired assertion. */
  readonly expiresInSeconds?: number;
  /** Default: a random UUID. */
  readonly jti?: string;
  /** Overrides for tests: a different `aud`, `kid`, `iss`… */
  readonly overrides?: { readonly aud?: string; readonly kid?: string; readonly iss?: string; readonly sub?: string };
  /** Clock (epoch ms); default `Date.now`. */
  readonly now?: () => number;
}

/** A signed client assertion JWT. */
export async function signClientAssertion(input: ClientAssertionInput): Promise<string> {
  const alg = input.privateJwk.alg;
  if (alg !== 'RS384' && alg !== 'ES384') {
    throw new Error('The private JWK must have alg RS384 or ES384');
  }
  const key = await importJWK(input.privateJwk, alg);
  const nowSeconds = Math.floor((input.now ?? Date.now)() / 1000);
  return new SignJWT({ jti: input.jti ?? randomUUID() })
    .setProtectedHeader({ alg, typ: 'JWT', kid: input.overrides?.kid ?? input.privateJwk.kid })
    .setIssuer(input.overrides?.iss ?? input.clientId)
    .setSubject(input.overrides?.sub ?? input.clientId)
    .setAudience(input.overrides?.aud ?? input.tokenUrl)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + (input.expiresInSeconds ?? 300))
    .sign(key);
}

/** The form body of a token request. */
export function tokenRequestBody(assertion: string, scope: string): URLSearchParams {
  return new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
    client_assertion: assertion,
    scope,
  });
}

export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
  readonly scope: string;
}

/** Signs an assertion and requests an access token; throws with the OAuth error if refused. */
export async function requestAccessToken(input: ClientAssertionInput & { readonly scope: string }): Promise<TokenResponse> {
  const assertion = await signClientAssertion(input);
  const response = await fetch(input.tokenUrl, { method: 'POST', body: tokenRequestBody(assertion, input.scope) });
  const body = (await response.json()) as Partial<TokenResponse> & { error?: string; error_description?: string };
  if (!response.ok || !body.access_token) {
    throw new Error(`Token request refused (${response.status}): ${body.error ?? ''} ${body.error_description ?? ''}`.trim());
  }
  return body as TokenResponse;
}
