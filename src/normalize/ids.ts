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
 * The UUID v5 is computed here with node:crypto SHA-1 (RFC 4122 §4.3), like `uuidV5` of
 * `src/cases/fhir-ids.ts` but with the name space bytes prepared once and one-shot hashing of
 * name space + name written into a reused buffer (`crypto.hash`): it runs once per imported
 * resource, on the assembly's hot path, where a `Hash` object per call cost ~45 % more (measured
 * 2026-11-29, 50,000 names: 191–240 ms against 125–136 ms).
 * @see https://www.rfc-editor.org/rfc/rfc4122#section-4.3
 * @see https://www.rfc-editor.org/rfc/rfc4122#appendix-C (name space for URLs)
 * @see https://hl7.org/fhir/R4/references.html#literal
 * @see https://hl7.org/fhir/R4/bundle.html#bundle-unique (fullUrl)
 * @packageDocumentation
 */
import { createHash, hash } from 'node:crypto';

/** RFC 4122 Appendix C: the name space for fully-qualified URLs. */
export const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The 16 bytes of a UUID string. */
export function uuidBytes(uuid: string): Buffer {
  if (!UUID.test(uuid)) throw new RangeError(`not a UUID: ${uuid}`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

const URL_NAMESPACE_BYTES = uuidBytes(URL_NAMESPACE);

/** Scratch space for name space + name (most names are a URL of well under 1 KiB). */
const SCRATCH = Buffer.allocUnsafe(4096);

/** SHA-1 of `namespace` followed by the UTF-8 bytes of `name`. */
function sha1(namespace: Uint8Array, name: string): Buffer {
  // At most 3 UTF-8 bytes per UTF-16 unit: the name certainly fits when this holds.
  if (namespace.length + name.length * 3 > SCRATCH.length) return createHash('sha1').update(namespace).update(name, 'utf8').digest();
  SCRATCH.set(namespace, 0);
  const end = namespace.length + SCRATCH.write(name, namespace.length, 'utf8');
  return hash('sha1', SCRATCH.subarray(0, end), 'buffer');
}

/**
 * RFC 4122 §4.3 name-based UUID, version 5: SHA-1 of name space bytes + UTF-8 name, first 16 bytes,
 * version nibble 5, variant bits 10.
 * @param namespace - the name space's 16 bytes (see {@link uuidBytes})
 */
export function uuidV5(name: string, namespace: Uint8Array = URL_NAMESPACE_BYTES): string {
  const h = sha1(namespace, name);
  const b6 = ((h[6] ?? 0) & 0x0f) | 0x50;
  const b8 = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = (i: number): string => HEX[h[i] ?? 0] ?? '00';
  return (
    `${x(0)}${x(1)}${x(2)}${x(3)}-${x(4)}${x(5)}-${HEX[b6] ?? '50'}${x(7)}-${HEX[b8] ?? '80'}${x(9)}-` +
    `${x(10)}${x(11)}${x(12)}${x(13)}${x(14)}${x(15)}`
  );
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
  return `urn:uuid:${importedResourceId(baseUrl, resourceType, remoteId)}`;
}
