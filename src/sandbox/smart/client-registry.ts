/**
 * Registered SMART Backend Services clients: a client id, its public JWKS, and the scopes it may be
 * granted. Registration is out of band in SMART (the EHR admin does it); here it is an API call.
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
 */
import type { JSONWebKeySet } from 'jose';
import { createLocalJWKSet } from 'jose';
import { ScopeSet } from './scopes';

export interface ClientRegistration {
  readonly clientId: string;
  /** Public keys (RS384 / ES384), each with a `kid`. */
  readonly jwks: JSONWebKeySet;
  /** Scopes the client may be granted; default `system/*.*` (everything). */
  readonly scopes?: string;
}

export interface RegisteredClient {
  readonly clientId: string;
  readonly jwks: JSONWebKeySet;
  readonly keySet: ReturnType<typeof createLocalJWKSet>;
  readonly allowedScopes: ScopeSet;
}

export class ClientRegistry {
  private readonly clients = new Map<string, RegisteredClient>();

  register(registration: ClientRegistration): void {
    if (!registration.clientId) {
      throw new Error('clientId is required');
    }
    if (!Array.isArray(registration.jwks?.keys) || registration.jwks.keys.length === 0) {
      throw new Error(`Client ${registration.clientId}: jwks must contain at least one key`);
    }
    const { scopes, unrecognized } = ScopeSet.parse(registration.scopes ?? 'system/*.*');
    if (unrecognized.length > 0) {
      throw new Error(`Client ${registration.clientId}: unrecognized scopes ${unrecognized.join(' ')}`);
    }
    this.clients.set(registration.clientId, {
      clientId: registration.clientId,
      jwks: registration.jwks,
      keySet: createLocalJWKSet(registration.jwks),
      allowedScopes: scopes,
    });
  }

  get(clientId: string): RegisteredClient | undefined {
    return this.clients.get(clientId);
  }
}
