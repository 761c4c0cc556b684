/**
 * Opaque bearer access tokens issued by the token endpoint: random strings looked up in memory,
 * each with its client, granted scopes and expiry.
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#issue-access-token
 */
import { randomBytes } from 'node:crypto';
import type { ScopeSet } from './scopes';

export interface AccessTokenGrant {
  readonly clientId: string;
  readonly scopes: ScopeSet;
  /** Epoch ms. */
  readonly expiresAt: number;
}

export type TokenCheck = { status: 'valid'; grant: AccessTokenGrant } | { status: 'expired' } | { status: 'unknown' };

export class AccessTokenStore {
  private readonly tokens = new Map<string, AccessTokenGrant>();

  constructor(private readonly now: () => number) {}

  issue(clientId: string, scopes: ScopeSet, lifetimeSeconds: number): { token: string; grant: AccessTokenGrant } {
    this.dropExpired();
    const token = randomBytes(32).toString('base64url');
    const grant: AccessTokenGrant = { clientId, scopes, expiresAt: this.now() + lifetimeSeconds * 1000 };
    this.tokens.set(token, grant);
    return { token, grant };
  }

  check(token: string): TokenCheck {
    const grant = this.tokens.get(token);
    if (!grant) {
      return { status: 'unknown' };
    }
    return this.now() >= grant.expiresAt ? { status: 'expired' } : { status: 'valid', grant };
  }

  /** Expired tokens are kept one extra lifetime so clients still hear "expired", then forgotten. */
  private dropExpired(): void {
    const now = this.now();
    for (const [token, grant] of this.tokens) {
      if (now - grant.expiresAt > 3_600_000) {
        this.tokens.delete(token);
      }
    }
  }
}
