/**
 * Supplies the `Authorization` header of outbound FHIR requests.
 * https://hl7.org/fhir/R4/http.html#security
 */
export interface AuthStrategy {
  /** Header value for the next request (`Bearer …`), or undefined for open endpoints. */
  authorization(): Promise<string | undefined>;
  /**
   * Called after a 401 with the header value the server refused. Drops the cached credential and
   * says whether asking again can help (true for SMART tokens, false for static tokens).
   */
  invalidate(refused: string | undefined): Promise<boolean>;
  /**
   * The OAuth scope granted with the credential requests carry now (SMART Backend Services: the token
   * response's `scope`, https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5),
   * obtaining one when none is cached. Absent for strategies without scopes (none, static bearer).
   */
  grantedScope?(): Promise<string>;
}

/** No authentication (open sandboxes). */
export const NO_AUTH: AuthStrategy = {
  authorization: () => Promise.resolve(undefined),
  invalidate: () => Promise.resolve(false),
};

/** A static bearer token issued out of band: never refreshed. */
export function staticBearerAuth(token: string): AuthStrategy {
  const header = `Bearer ${token}`;
  return {
    authorization: () => Promise.resolve(header),
    invalidate: () => Promise.resolve(false),
  };
}
