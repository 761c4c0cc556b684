/**
 * Our public keys as a JSON Web Key Set, for the EHRs we call with SMART Backend Services: each EHR
 * verifies our client assertions with the public half of the key its endpoint is registered with here.
 * An EHR administrator registers our JWKS URL (`/.well-known/jwks.json`) for the client, or pastes an
 * endpoint's own set (`GET /api/endpoints/:id/jwks`).
 *
 * Only public members leave the service: the public key is derived from the sealed private key by
 * node's crypto (`createPublicKey`), never by copying fields, so a private member cannot slip through.
 * Several endpoints registered with the same key give one entry (same `kid`, same key). During a key
 * rotation an endpoint publishes two: the signing key and the next one.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
 * @see https://www.rfc-editor.org/rfc/rfc7517#section-5
 * @packageDocumentation
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { JWK } from 'jose';
import type { Queryable } from '../db/database';
import { logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import { listEndpoints, type EndpointRow } from './endpoint-repository';
import { openSealedSecretIfReadable, openSealedSecretOrRefuse, unreadableSecretProblem } from './endpoint-service';

/** A public signing key as published (RFC 7517). */
export interface PublicJwk {
  readonly kty: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: 'sig';
  readonly key_ops: readonly ['verify'];
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

/** The public half of a private signing JWK, with its `kid` and `alg`. */
export function publishedJwkOf(privateJwk: JWK): PublicJwk {
  const pub = createPublicKey({ key: privateJwk as JsonWebKey, format: 'jwk' }).export({ format: 'jwk' });
  return {
    kty: String(pub.kty),
    kid: String(privateJwk.kid ?? ''),
    alg: String(privateJwk.alg ?? ''),
    use: 'sig',
    key_ops: ['verify'],
    ...(pub.n !== undefined ? { n: pub.n, e: pub.e } : {}),
    ...(pub.crv !== undefined ? { crv: pub.crv, x: pub.x, y: pub.y } : {}),
  };
}

/**
 * The private JWKs sealed for a SMART Backend Services endpoint: its signing key, then the next key
 * of a rotation under way (published before it signs, so the EHR can learn it from our JWKS).
 */
function sealedPrivateJwks(row: EndpointRow, secrets: SecretBox, skipUnreadable: boolean): JWK[] {
  if (row.authType !== 'smart-backend') return [];
  const sealed = skipUnreadable ? (openSealedSecretIfReadable(row, secrets) ?? {}) : openSealedSecretOrRefuse(row, secrets);
  return [sealed.privateKeyJwk, sealed.nextPrivateKeyJwk].filter((k): k is JWK => k !== undefined);
}

/**
 * The public half of a sealed key; undefined (with a warning naming the endpoint, never the key) when
 * it makes no key: one sealed before registration checked keys (`signing-key.ts`) must not fail the
 * set every EHR reads.
 */
function publishedJwkIfUsable(row: EndpointRow, jwk: JWK): PublicJwk | undefined {
  try {
    return publishedJwkOf(jwk);
  } catch {
    logger.warn('endpoint signing key yields no public key: left out of our JWKS; register its auth again', { endpointId: row.id });
    return undefined;
  }
}

/**
 * The key set of the given endpoints: one entry per distinct key, in registration order (signing key,
 * then next). With `skipUnreadable`, an endpoint whose sealed secret cannot be opened (sealed under
 * another `SECRETS_KEY`, or damaged), or a sealed key that makes no public key, is left out with a
 * warning; without it, that is a 409 naming `auth` (register it again), not a server error.
 * @throws HttpProblem 409 naming `auth` (without `skipUnreadable`)
 */
export function jwksOf(rows: readonly EndpointRow[], secrets: SecretBox, skipUnreadable = false): { keys: PublicJwk[] } {
  const keys: PublicJwk[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const jwk of sealedPrivateJwks(row, secrets, skipUnreadable)) {
      const key = publishedJwkIfUsable(row, jwk);
      if (key === undefined && !skipUnreadable) throw unreadableSecretProblem(row.id, 'its sealed signing key makes no public key');
      if (key === undefined) continue;
      const identity = JSON.stringify(key);
      if (seen.has(identity)) continue;
      seen.add(identity);
      keys.push(key);
    }
  }
  return { keys };
}

/**
 * Our JWKS: the public keys of every (not deleted) SMART Backend Services endpoint. One endpoint whose
 * key cannot be opened is left out, with a warning, rather than failing the set every EHR reads.
 */
export async function serviceJwks(db: Queryable, secrets: SecretBox): Promise<{ keys: PublicJwk[] }> {
  return jwksOf(await listEndpoints(db), secrets, true);
}
