/**
 * Deterministic identities of imported resources.
 *
 * Every resource pulled from a source gets `id` = a name-based UUID (version 5, SHA-1) and the
 * Bundle `fullUrl` = `urn:uuid:<that uuid>`. The name is the resource's absolute URL at its source,
 * `[base]/[type]/[id]` (the "literal reference" form of FHIR), hashed in the RFC 4122 name space for
 * URLs. So the same remote resource always gets the same uuid (re-assembly, replays, another case of
 * the same child), two sources never collide, and the same server registered twice yields the same
 * uuid for the same resource (normalization then treats the copies as versions of one resource).
 *
 * The UUID itself is `src/util/uuid-v5.ts`'s (the service's one implementation), in this name space.
 * @see https://www.rfc-editor.org/rfc/rfc4122#section-4.3
 * @see https://www.rfc-editor.org/rfc/rfc4122#appendix-C (name space for URLs)
 * @see https://hl7.org/fhir/R4/references.html#literal
 * @see https://hl7.org/fhir/R4/bundle.html#bundle-unique (fullUrl)
 * @packageDocumentation
 */
import { uuidBytes, uuidV5 as uuidV5In, uuidV5Urn as uuidV5UrnIn } from '../util/uuid-v5';

export { URN_UUID_PREFIX, uuidBytes } from '../util/uuid-v5';

/** RFC 4122 Appendix C: the name space for fully-qualified URLs. */
export const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

const URL_NAMESPACE_BYTES = uuidBytes(URL_NAMESPACE);

/** The version 5 UUID of `name`, in the URL name space unless another's 16 bytes are given. */
export function uuidV5(name: string, namespace: Uint8Array = URL_NAMESPACE_BYTES): string {
  return uuidV5In(name, namespace);
}

/** `urn:uuid:` + {@link uuidV5} of `name`, as one flat string (a Bundle entry's `fullUrl`). */
export function uuidV5Urn(name: string, namespace: Uint8Array = URL_NAMESPACE_BYTES): string {
  return uuidV5UrnIn(name, namespace);
}

/** A source base URL without trailing slashes (`https://x/r4/` and `https://x/r4` are one server). */
export function normalizeBaseUrl(baseUrl: string): string {
  let end = baseUrl.length;
  while (end > 0 && baseUrl.charCodeAt(end - 1) === 47 /* / */) end--;
  return end === baseUrl.length ? baseUrl : baseUrl.slice(0, end);
}

/** The resource's absolute URL at its source: `[base]/[type]/[id]`. */
export function sourceResourceUrl(baseUrl: string, resourceType: string, remoteId: string): string {
  return `${normalizeBaseUrl(baseUrl)}/${resourceType}/${remoteId}`;
}

/** UUID v5 of {@link sourceResourceUrl} in the URL name space: the imported resource's new `id`. */
export function importedResourceId(baseUrl: string, resourceType: string, remoteId: string): string {
  return uuidV5(sourceResourceUrl(baseUrl, resourceType, remoteId));
}

/** `urn:uuid:` + {@link importedResourceId}: the imported resource's `Bundle.entry.fullUrl`. */
export function importedFullUrl(baseUrl: string, resourceType: string, remoteId: string): string {
  return uuidV5Urn(sourceResourceUrl(baseUrl, resourceType, remoteId));
}
