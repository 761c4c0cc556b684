/**
 * What a SMART scope string lets this client do. The scope that counts is the one the EHR granted
 * (the token response's `scope`, which "can be different from the scopes requested":
 * https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5, `FhirEndpointClient.grantedScope`).
 * @packageDocumentation
 */

/** One SMART scope: `{context}/{type|*}.{read|write|*}` (v1) or `.{cruds subset}` (v2), an optional `?query` restriction. */
const SCOPE = /^(?:system|user|patient)\/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)(?:\?.*)?$/;

/**
 * An interaction a SMART scope may grant, and what grants it (v1 `read` covers read and search,
 * `write` create and update; v2 its letter).
 */
const INTERACTIONS = {
  create: { v1: 'write', v2: 'c' },
  read: { v1: 'read', v2: 'r' },
  update: { v1: 'write', v2: 'u' },
  search: { v1: 'read', v2: 's' },
} as const;

/** An interaction {@link scopeAllows} judges. */
export type ScopeInteraction = keyof typeof INTERACTIONS;

/**
 * Whether a SMART scope string lets the client `create` / `read` / `update` / `search` resources of
 * `type` (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html: v1 `write` (create,
 * update) or `read` (read, search), or `*`; v2 `c` / `r` / `u` / `s`). A query-restricted scope
 * counts: the server judges the resource against its query.
 * `undefined`: no SMART scope applies (no auth, a bearer token): the server's answer decides.
 */
export function scopeAllows(scope: string | undefined, type: string, interaction: ScopeInteraction): boolean {
  if (scope === undefined) return true;
  const { v1, v2 } = INTERACTIONS[interaction];
  return scope
    .split(/\s+/)
    .filter(Boolean)
    .some((s) => {
      const m = SCOPE.exec(s);
      if (!m || (m[1] !== '*' && m[1] !== type)) return false;
      const perm = m[2] ?? '';
      if (perm === 'read' || perm === 'write') return perm === v1;
      return perm === '*' || perm.includes(v2);
    });
}
