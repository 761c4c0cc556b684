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

/** `0`–`9a`–`f` as ASCII bytes. */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** What a Bundle entry's `fullUrl` of a uuid starts with. */
export const URN_UUID_PREFIX = 'urn:uuid:';

/** `urn:uuid:` then the UUID's 36 characters, written as bytes before they become one string. */
const URN_TEXT = Buffer.from(`${URN_UUID_PREFIX}${'0'.repeat(36)}`, 'latin1');
const URN_PREFIX_LENGTH = URN_UUID_PREFIX.length;

/** Writes the version 5 UUID of `name` into {@link URN_TEXT} after its prefix. */
function writeUuidV5(name: string, namespace: Uint8Array): void {
  const h = sha1(namespace, name);
  let at = URN_PREFIX_LENGTH;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) URN_TEXT[at++] = 0x2d; // '-'
    let byte = h[i] ?? 0;
    if (i === 6) byte = (byte & 0x0f) | 0x50; // version 5
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // variant 10
    URN_TEXT[at++] = HEX_DIGITS[byte >> 4] ?? 0x30;
    URN_TEXT[at++] = HEX_DIGITS[byte & 0x0f] ?? 0x30;
  }
}

/**
 * RFC 4122 §4.3 name-based UUID, version 5: SHA-1 of name space bytes + UTF-8 name, first 16 bytes,
 * version nibble 5, variant bits 10.
 *
 * The characters are written as bytes and read back as one string: one flat string per call, where a
 * template of 16 hex pairs made ~20 intermediate strings (31 MB of garbage per 50,000-resource
 * assembly, measured with V8's sampling heap profiler on 2026-12-02) and left a rope for
 * `JSON.stringify` to flatten.
 * @param namespace - the name space's 16 bytes (see {@link uuidBytes})
 */
export function uuidV5(name: string, namespace: Uint8Array = URL_NAMESPACE_BYTES): string {
  writeUuidV5(name, namespace);
  return URN_TEXT.toString('latin1', URN_PREFIX_LENGTH);
}

/** `urn:uuid:` + {@link uuidV5} of `name`, as one flat string (a Bundle entry's `fullUrl`). */
export function uuidV5Urn(name: string, namespace: Uint8Array = URL_NAMESPACE_BYTES): string {
  writeUuidV5(name, namespace);
  return URN_TEXT.toString('latin1');
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
