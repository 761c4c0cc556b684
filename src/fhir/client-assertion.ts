import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK, type KeyLike } from 'jose';
import { SmartAuthError } from './errors';

/**
 * The client assertion of SMART Backend Services (a JWT per RFC 7523 §2.2, signed with our private
 * key), https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token
 *
 * Header: `alg` RS384 or ES384 (the key's), `kid`, `typ: JWT`.
 * Claims: `iss` = `sub` = client id, `aud` = token endpoint URL, `exp` no more than five minutes
 * ahead (we use four, leaving room for clock skew), a fresh `jti`.
 */
export type AssertionAlg = 'RS384' | 'ES384';

/** Assertion lifetime; SMART requires at most 5 minutes. */
export const ASSERTION_LIFETIME_SECONDS = 240;

/** A signer bound to one private key; the key is imported once. */
export class ClientAssertionSigner {
  private readonly alg: AssertionAlg;
  private readonly kid: string;
  private key: Promise<KeyLike | Uint8Array> | undefined;

  constructor(
    private readonly clientId: string,
    private readonly privateKeyJwk: JWK,
  ) {
    const { alg, kid, kty, crv, d } = privateKeyJwk;
    if (alg !== 'RS384' && alg !== 'ES384') throw new SmartAuthError('private key alg must be RS384 or ES384', false);
    if (!kid) throw new SmartAuthError('private key has no kid', false);
    if (!d) throw new SmartAuthError('key is not a private key', false);
    if (alg === 'RS384' && kty !== 'RSA') throw new SmartAuthError('RS384 needs an RSA key', false);
    if (alg === 'ES384' && (kty !== 'EC' || crv !== 'P-384')) throw new SmartAuthError('ES384 needs an EC P-384 key', false);
    this.alg = alg;
    this.kid = kid;
  }

  /** Signs a fresh assertion for `tokenUrl`. `nowMs` is injectable for tests. */
  async sign(tokenUrl: string, nowMs: number = Date.now()): Promise<string> {
    this.key ??= importJWK(this.privateKeyJwk, this.alg);
    let key: KeyLike | Uint8Array;
    try {
      key = await this.key;
    } catch (err) {
      this.key = undefined;
      throw new SmartAuthError('private key could not be imported', false, undefined, undefined, { cause: err });
    }
    const now = Math.floor(nowMs / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'JWT' })
      .setIssuer(this.clientId)
      .setSubject(this.clientId)
      .setAudience(tokenUrl)
      .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
      .setJti(randomUUID())
      .sign(key);
  }
}
