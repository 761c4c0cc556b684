/**
 * Remembers the `jti` of every accepted client assertion until the assertion expires, so the same
 * JWT cannot be used twice. SMART: "the authorization server SHALL … check that the jti value has
 * not been previously encountered for the given iss within the maximum allowed authentication JWT
 * lifetime (e.g., 5 minutes)".
 *
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification
 */
export class JtiReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** Records the jti; returns false if it was already seen and has not expired yet. */
  remember(clientId: string, jti: string, expiresAtMs: number): boolean {
    const now = this.now();
    for (const [key, expiry] of this.seen) {
      if (expiry <= now) {
        this.seen.delete(key);
      }
    }
    const key = `${clientId}\u0000${jti}`;
    if (this.seen.has(key)) {
      return false;
    }
    this.seen.set(key, expiresAtMs);
    return true;
  }
}
