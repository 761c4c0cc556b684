/**
 * Name-based UUIDs, version 5 (SHA-1): the one implementation the service's deterministic ids use
 * (imported resources, `src/normalize/ids.ts`; a case's own resources and the assembly's, uploads,
 * imaging studies, idempotency keys, `src/cases/fhir-ids.ts`).
 *
 * Name space + name are written into a reused buffer and hashed one-shot (`crypto.hash`): it runs once
 * per imported resource, on the assembly's hot path, where a `Hash` object per call cost ~45 % more
 * (measured 2026-11-29, 50,000 names: 191–240 ms against 125–136 ms). The characters are written as
 * bytes and read back as one string: one flat string per call, where a template of 16 hex pairs made
 * ~20 intermediate strings (31 MB of garbage per 50,000-resource assembly, measured with V8's sampling
 * heap profiler on 2026-12-02) and left a rope for `JSON.stringify` to flatten.
 * @see https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-5
 * @see https://www.rfc-editor.org/rfc/rfc4122#section-4.3
 * @packageDocumentation
 */
import { createHash, hash } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The 16 bytes of a UUID string; a RangeError for anything else. */
export function uuidBytes(uuid: string): Buffer {
  if (!UUID.test(uuid)) throw new RangeError(`not a UUID: ${uuid}`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

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
 * The version 5 UUID of `name` in `namespace`: SHA-1 of name space bytes + UTF-8 name, first 16 bytes,
 * version nibble 5, variant bits 10; lower-case hex.
 * @param namespace - the name space's 16 bytes (see {@link uuidBytes})
 */
export function uuidV5(name: string, namespace: Uint8Array): string {
  writeUuidV5(name, namespace);
  return URN_TEXT.toString('latin1', URN_PREFIX_LENGTH);
}

/** `urn:uuid:` + {@link uuidV5} of `name`, as one flat string (a Bundle entry's `fullUrl`). */
export function uuidV5Urn(name: string, namespace: Uint8Array): string {
  writeUuidV5(name, namespace);
  return URN_TEXT.toString('latin1');
}
