/**
 * Checks a SMART Backend Services signing key as a key, not only as a JSON shape, before it is
 * sealed: a key the crypto library cannot build, an RSA modulus under 2048 bits, or a private part
 * that does not belong to the public members would otherwise be stored, fail every token request
 * later, and make our public JWKS (derived from it) fail for every EHR that reads it.
 *
 * - RS384 keys are RSA keys of at least 2048 bits (RFC 7518 §3.3: "A key of size 2048 bits or
 *   larger MUST be used with these algorithms"); ES384 keys are on P-384 (RFC 7518 §3.4).
 * - The private key must sign what its own public members (`n`/`e`, `x`/`y`) verify: the public
 *   half an EHR registers is the one we derive and publish.
 *
 * Messages never carry key material, nor the crypto library's own text.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.3
 * @packageDocumentation
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

/** The smallest RSA modulus RS384 may be used with (RFC 7518 §3.3). */
export const MIN_RSA_MODULUS_BITS = 2048;

/** A problem with a signing key: `path` is relative to the JWK (empty: the key as a whole). */
export interface SigningKeyProblem {
  readonly path: readonly string[];
  readonly message: string;
}

/** The members of a signing JWK this check reads (already shape-checked by the schema). */
export interface SigningJwkMembers {
  readonly kty: 'RSA' | 'EC';
  readonly crv?: string | undefined;
  readonly x?: string | undefined;
  readonly y?: string | undefined;
  readonly n?: string | undefined;
  readonly e?: string | undefined;
}

const NOT_A_KEY =
  'is not a usable private key: its members do not make an RS384 (n, e, d, p, q, dp, dq, qi) or ES384 P-384 (crv, x, y, d) key';

function importOrUndefined<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

/**
 * The problem with a private signing JWK, or undefined when it is a usable RS384 (≥ 2048 bits) or
 * ES384 key whose private part matches its public members.
 */
export function signingKeyProblem(jwk: SigningJwkMembers & Record<string, unknown>): SigningKeyProblem | undefined {
  const privateKey = importOrUndefined(() => createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));
  const publicMembers: JsonWebKey = jwk.kty === 'RSA' ? { kty: 'RSA', n: jwk.n, e: jwk.e } : { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
  const publicKey = importOrUndefined(() => createPublicKey({ key: publicMembers, format: 'jwk' }));
  if (!privateKey || !publicKey) return { path: [], message: `the key ${NOT_A_KEY}` };
  const details = privateKey.asymmetricKeyDetails;
  if (jwk.kty === 'RSA' && (details?.modulusLength ?? 0) < MIN_RSA_MODULUS_BITS) {
    return {
      path: ['n'],
      message: `an RS384 key must have a modulus of at least ${MIN_RSA_MODULUS_BITS} bits (this one has ${details?.modulusLength ?? 0}): RFC 7518 §3.3`,
    };
  }
  if (jwk.kty === 'EC' && details?.namedCurve !== 'secp384r1') return { path: ['crv'], message: 'an ES384 key must be on P-384' };
  if (!signsForItsPublicKey(privateKey, publicKey)) {
    return { path: [], message: 'the private part (d) does not belong to the public members (n and e, or x and y) of this key' };
  }
  return undefined;
}

/** Signs a random message with the private key and verifies it with the public members. */
function signsForItsPublicKey(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const message = randomBytes(32);
  const signature = importOrUndefined(() => sign('sha384', message, privateKey));
  return signature !== undefined && importOrUndefined(() => verify('sha384', message, publicKey, signature)) === true;
}
