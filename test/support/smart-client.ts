import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface TestSmartClient {
  readonly clientId: string;
  readonly privateKeyJwk: JWK;
  readonly publicJwks: { keys: JWK[] };
}

/** A SMART Backend Services client key pair (ES384 or RS384) for registering at a sandbox. */
export async function makeSmartClient(clientId: string, alg: 'ES384' | 'RS384' = 'ES384'): Promise<TestSmartClient> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${clientId}-${alg.toLowerCase()}`;
  const privateKeyJwk = { ...(await exportJWK(privateKey)), kid, alg };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { clientId, privateKeyJwk, publicJwks: { keys: [publicJwk] } };
}
