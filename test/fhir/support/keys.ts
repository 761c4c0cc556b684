import { exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';

export interface TestKey {
  readonly privateJwk: JWK;
  readonly publicKey: KeyLike;
  readonly kid: string;
}

/** A fresh signing key for SMART client assertions (RS384 or ES384). */
export async function makeKey(alg: 'RS384' | 'ES384'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `test-${alg.toLowerCase()}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
  return { privateJwk, publicKey, kid };
}
