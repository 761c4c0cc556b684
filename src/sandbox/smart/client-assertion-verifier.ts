/**
 * Verifies a SMART Backend Services client assertion (a JWT signed with the client's private key),
 * as the authorization server must:
 * - signed with RS384 or ES384 by a key in the client's registered JWKS (selected by `kid`);
 * - `iss` = `sub` = the client id, `aud` = the token endpoint URL;
 * - `exp` present, not past, and no more than five minutes in the future;
 * - `jti` present and not seen before within the assertion's lifetime.
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification
 * @see https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { ClientRegistry, RegisteredClient } from './client-registry';
import type { JtiReplayCache } from './jti-replay-cache';

export const SUPPORTED_ASSERTION_ALGORITHMS = ['RS384', 'ES384'];

/** Longest lifetime a client assertion may claim, per SMART. */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;

export type AssertionCheck = { ok: true; client: RegisteredClient } | { ok: false; description: string };

export interface AssertionVerifierOptions {
  readonly tokenUrl: string;
  readonly clients: ClientRegistry;
  readonly replayCache: JtiReplayCache;
  readonly now: () => number;
  /** Allowed clock skew between client and server. */
  readonly clockToleranceSeconds: number;
}

export async function verifyClientAssertion(
  assertion: string,
  claimedClientId: string | undefined,
  options: AssertionVerifierOptions
): Promise<AssertionCheck> {
  let issuer: unknown;
  let algorithm: unknown;
  try {
    issuer = decodeJwt(assertion).iss;
    algorithm = decodeProtectedHeader(assertion).alg;
  } catch {
    return { ok: false, description: 'client_assertion is not a JWT' };
  }
  if (typeof issuer !== 'string' || !issuer) {
    return { ok: false, description: 'client_assertion has no iss' };
  }
  if (claimedClientId && claimedClientId !== issuer) {
    return { ok: false, description: 'client_id does not match the assertion iss' };
  }
  const client = options.clients.get(issuer);
  if (!client) {
    return { ok: false, description: `Unknown client ${issuer}` };
  }
  if (typeof algorithm !== 'string' || !SUPPORTED_ASSERTION_ALGORITHMS.includes(algorithm)) {
    return { ok: false, description: `Unsupported signing algorithm ${String(algorithm)}; use RS384 or ES384` };
  }
  const nowMs = options.now();
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, client.keySet, {
      algorithms: SUPPORTED_ASSERTION_ALGORITHMS,
      issuer: client.clientId,
      subject: client.clientId,
      audience: options.tokenUrl,
      requiredClaims: ['exp', 'jti'],
      currentDate: new Date(nowMs),
      clockTolerance: options.clockToleranceSeconds,
    }));
  } catch (err) {
    return { ok: false, description: describeVerificationError(err) };
  }
  const exp = payload.exp as number;
  const latestAllowed = nowMs / 1000 + MAX_ASSERTION_LIFETIME_SECONDS + options.clockToleranceSeconds;
  if (exp > latestAllowed) {
    return { ok: false, description: 'client_assertion exp is more than five minutes in the future' };
  }
  if (typeof payload.jti !== 'string' || !options.replayCache.remember(client.clientId, payload.jti, (exp + options.clockToleranceSeconds) * 1000)) {
    return { ok: false, description: 'client_assertion jti was already used' };
  }
  return { ok: true, client };
}

function describeVerificationError(err: unknown): string {
  if (err instanceof errors.JWTExpired) {
    return 'client_assertion has expired';
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return `client_assertion claim ${err.claim} is invalid: ${err.message}`;
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return 'No registered key matches the client_assertion kid and alg';
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return 'Several registered keys match; the client_assertion must name one with kid';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return 'client_assertion signature is invalid';
  }
  return `client_assertion is invalid: ${err instanceof Error ? err.message : String(err)}`;
}
