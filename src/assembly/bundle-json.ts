/**
 * The JSON text of a (large) Bundle in parts, so it can be stored without ever holding the whole
 * text at once: a 50,000-entry case bundle is ~100 MB of JSON, which as one string (plus the
 * driver's copy of it as a message buffer) would be the largest allocation of an assembly.
 *
 * The parts concatenated are exactly `JSON.stringify(bundle)` when `entry` is the Bundle's last
 * key (as `buildDocumentBundle` makes it); otherwise the same JSON value with `entry` moved last.
 */
import type { Bundle, BundleEntry } from 'fhir/r4';

/** Characters per part, about (an entry is never split). */
export const BUNDLE_PART_CHARS = 1024 * 1024;

/** Entries in the first run serialised at once; later runs are sized from the characters seen. */
const FIRST_RUN = 32;
const MAX_RUN = 65_536;

/** Options of {@link bundleJsonParts}. */
export interface BundleJsonOptions {
  /**
   * Each entry's slot in `bundle.entry` is emptied once the entry is serialised, so the resources of
   * a large bundle become garbage while its text is produced instead of all living until the last
   * part: the caller hands the bundle over (an assembly storing what it built). The array keeps its
   * length; its slots read as empty entries afterwards.
   */
  readonly releaseEntries?: boolean;
}

/** What a released entry slot holds (one shared empty entry). */
const RELEASED: BundleEntry = Object.freeze({});

/**
 * `JSON.stringify(bundle)` cut into parts of about `partChars` characters, never inside an entry.
 *
 * Entries are serialised a run at a time (`JSON.stringify` of a slice of the entry array, brackets
 * cut off), the run's length chosen from the characters per entry seen so far so that one run is
 * about one part: one string per part instead of one per entry joined afterwards, which halves the
 * garbage (and the time) of serialising a large bundle.
 * @returns the parts, in order; one part for a bundle shorter than `partChars`
 */
export function* bundleJsonParts(bundle: Bundle, partChars = BUNDLE_PART_CHARS, options: BundleJsonOptions = {}): Generator<string, void, undefined> {
  const { entry, ...rest } = bundle;
  if (entry === undefined) {
    yield JSON.stringify(bundle);
    return;
  }
  const head = JSON.stringify(rest);
  let pieces: string[] = [`${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entry":[`];
  let size = pieces[0]?.length ?? 0;
  let run = FIRST_RUN;
  let serialised = 0;
  let chars = 0;
  for (let i = 0; i < entry.length; ) {
    const end = Math.min(entry.length, i + run);
    // An array's text is `[` + its elements' texts joined by `,` + `]` (undefined written as null).
    const text = JSON.stringify(entry.slice(i, end));
    if (options.releaseEntries) entry.fill(RELEASED, i, end);
    pieces.push(i > 0 ? `,${text.slice(1, -1)}` : text.slice(1, -1));
    size += text.length - 1;
    chars += text.length;
    serialised += end - i;
    i = end;
    if (size >= partChars) {
      yield joined(pieces);
      pieces = [];
      size = 0;
    }
    run = Math.max(1, Math.min(MAX_RUN, Math.floor(((partChars - size) * serialised) / chars)));
  }
  pieces.push(']}');
  yield joined(pieces);
}

/** The pieces as one string (the piece itself when there is one, no copy). */
function joined(pieces: readonly string[]): string {
  return pieces.length === 1 ? (pieces[0] ?? '') : pieces.join('');
}
