/**
 * The key pair of the sandbox world's SMART Backend Services client: generated once, kept under
 * `.sandbox/` (git-ignored), reused on later starts so a running service keeps working.
 *
 * Files in the state directory:
 * - `client-private-key.jwk.json`: the private JWK (with `kid`, `alg`), mode 0600;
 * - `client-jwks.json`: the public JWKS the servers register (what a real EHR would be given).
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JWK, JSONWebKeySet } from 'jose';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

export type ClientKeyAlgorithm = 'ES384' | 'RS384';

export interface SandboxClientCredentials {
  readonly clientId: string;
  readonly alg: ClientKeyAlgorithm;
  readonly kid: string;
  /** Private JWK (includes `kid` and `alg`). */
  readonly privateJwk: JWK;
  /** Public JWKS to register with the servers. */
  readonly jwks: JSONWebKeySet;
  /** Where the private JWK is stored. */
  readonly privateKeyPath: string;
  /** Where the public JWKS is stored. */
  readonly jwksPath: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Reads the client key pair from `stateDir`, or generates and saves one. */
export async function loadOrCreateClientCredentials(
  stateDir: string,
  clientId: string,
  alg: ClientKeyAlgorithm = 'ES384'
): Promise<SandboxClientCredentials> {
  const privateKeyPath = path.join(stateDir, 'client-private-key.jwk.json');
  const jwksPath = path.join(stateDir, 'client-jwks.json');
  let privateJwk: JWK;
  if (existsSync(privateKeyPath)) {
    privateJwk = JSON.parse(await readFile(privateKeyPath, 'utf8')) as JWK;
    if (!privateJwk.kid || (privateJwk.alg !== 'ES384' && privateJwk.alg !== 'RS384') || !privateJwk.d) {
      throw new Error(`${privateKeyPath} is not a private ES384/RS384 JWK with a kid; delete it to generate a new one`);
    }
  } else {
    privateJwk = await generateClientKey(alg);
    await mkdir(stateDir, { recursive: true });
    await writeFile(privateKeyPath, JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600 });
  }
  const jwks: JSONWebKeySet = { keys: [publicJwkOf(privateJwk)] };
  await mkdir(stateDir, { recursive: true });
  await writeFile(jwksPath, JSON.stringify(jwks, null, 2) + '\n');
  return {
    clientId,
    alg: privateJwk.alg as ClientKeyAlgorithm,
    kid: privateJwk.kid as string,
    privateJwk,
    jwks,
    privateKeyPath,
    jwksPath,
  };
}

/** A new private JWK for `alg`, with `kid` = its RFC 7638 thumbprint. */
export async function generateClientKey(alg: ClientKeyAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

/** The public half of a private JWK. */
export function publicJwkOf(privateJwk: JWK): JWK {
  const publicEntries = Object.entries(privateJwk).filter(([member]) => !PRIVATE_MEMBERS.includes(member));
  return Object.fromEntries(publicEntries) as JWK;
}
