/**
 * The JSON text of a (large) Bundle in parts, so it can be stored without ever holding the whole
 * text at once: a 50,000-entry case bundle is ~100 MB of JSON, which as one string (plus the
 * driver's copy of it as a message buffer) would be the largest allocation of an assembly.
 *
 * The parts concatenated are exactly `JSON.stringify(bundle)` when `entry` is the Bundle's last
 * key (as `buildDocumentBundle` makes it); otherwise the same JSON value with `entry` moved last.
 */
import type { Bundle } from 'fhir/r4';

/** Characters per part, about (an entry is never split). */
export const BUNDLE_PART_CHARS = 1024 * 1024;

/**
 * `JSON.stringify(bundle)` cut into parts of about `partChars` characters, one entry at a time.
 * @returns the parts, in order; one part for a small Bundle
 */
export function* bundleJsonParts(bundle: Bundle, partChars = BUNDLE_PART_CHARS): Generator<string, void, undefined> {
  const { entry, ...rest } = bundle;
  if (entry === undefined) {
    yield JSON.stringify(bundle);
    return;
  }
  const head = JSON.stringify(rest);
  let part = `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entry":[`;
  let pieces: string[] = [part];
  let size = part.length;
  for (let i = 0; i < entry.length; i++) {
    // JSON.stringify of an array writes `null` for an undefined element; keep that.
    part = `${i > 0 ? ',' : ''}${JSON.stringify(entry[i]) ?? 'null'}`;
    pieces.push(part);
    size += part.length;
    if (size >= partChars) {
      yield pieces.join('');
      pieces = [];
      size = 0;
    }
  }
  pieces.push(']}');
  yield pieces.join('');
}
