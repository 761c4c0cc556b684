import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** A SMART Backend Services client: its id, the private JWK we register, the public JWKS the sandbox trusts. */
export interface DrillSmartClient {
  readonly clientId: string;
  readonly privateKeyJwk: JWK;
  readonly publicJwks: { keys: JWK[] };
}

/** An ES384 key pair for a SMART Backend Services client of the sandbox. */
export async function makeSmartClient(clientId: string): Promise<DrillSmartClient> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const kid = `${clientId}-es384`;
  return {
    clientId,
    privateKeyJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES384' },
    publicJwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' }] },
  };
}
