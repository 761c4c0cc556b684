/**
 * The JSON text of a (large) Bundle in parts, so it can be stored without ever holding the whole
 * text at once: a 50,000-entry case bundle is ~100 MB of JSON, which as one string (plus the
 * driver's copy of it as a message buffer) would be the largest allocation of an assembly.
 *
 * As strings ({@link bundleJsonParts}) or as UTF-8 bytes ({@link bundleJsonByteParts}: what the
 * assembly thread hands over). The parts concatenated are exactly `JSON.stringify(bundle)` when
 * `entry` is the Bundle's last key (as `buildDocumentBundle` makes it); otherwise the same JSON
 * value with `entry` moved last.
 */
import type { Bundle, BundleEntry } from 'fhir/r4';

/** Characters per part, about (an entry is never split). */
export const BUNDLE_PART_CHARS = 1024 * 1024;

/** Entries in the first run serialised at once; later runs are sized from the characters seen. */
const FIRST_RUN = 32;
const MAX_RUN = 65_536;

/**
 * Bytes per part of {@link bundleJsonByteParts}, about (an entry is never split; one larger than this
 * is a part of its own).
 */
export const BUNDLE_PART_BYTES = 1024 * 1024;

/**
 * Characters per run of entries serialised at once into byte parts: below V8's large-object size
 * (128 KiB), so each run's text is a young-generation string that dies in the next scavenge once
 * copied into its part, instead of a megabyte string only a full collection frees.
 */
const BYTE_RUN_CHARS = 64 * 1024;

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

/** `,` in UTF-8. */
const COMMA = 0x2c;

/** What a released entry slot holds (one shared empty entry). */
const RELEASED: BundleEntry = Object.freeze({});

/** A piece of the Bundle's text: the text before the entries, a run of whole entries, or the end. */
type BundleJsonPiece =
  | { readonly kind: 'text'; readonly text: string }
  /**
   * `JSON.stringify` of a run of entries, brackets kept (`[e1,e2]`): its consumer writes what is
   * between them, after a `,` unless `first`. Cutting them off as a string (`slice`, then `','+`)
   * would copy the run's text twice more before it is written out.
   */
  | { readonly kind: 'run'; readonly array: string; readonly first: boolean };

/**
 * The text of `bundle` as pieces that concatenate to `JSON.stringify(bundle)` (with `entry` last): the
 * Bundle's other elements and `"entry":[`, then runs of whole entries, then `]}`.
 *
 * Entries are serialised a run at a time (`JSON.stringify` of a slice of the entry array): one string
 * per run instead of one per entry joined afterwards. Before each run, `runChars()` says about how
 * many characters the caller wants in it; the number of entries is chosen from the characters per
 * entry seen so far.
 */
function* bundleJsonPieces(bundle: Bundle, runChars: () => number, options: BundleJsonOptions): Generator<BundleJsonPiece, void, undefined> {
  const { entry, ...rest } = bundle;
  if (entry === undefined) {
    yield { kind: 'text', text: JSON.stringify(bundle) };
    return;
  }
  const head = JSON.stringify(rest);
  yield { kind: 'text', text: `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entry":[` };
  let run = FIRST_RUN;
  let serialised = 0;
  let chars = 0;
  for (let i = 0; i < entry.length; ) {
    const end = Math.min(entry.length, i + run);
    // An array's text is `[` + its elements' texts joined by `,` + `]` (undefined written as null).
    const array = JSON.stringify(entry.slice(i, end));
    if (options.releaseEntries) entry.fill(RELEASED, i, end);
    chars += array.length;
    serialised += end - i;
    yield { kind: 'run', array, first: i === 0 };
    i = end;
    run = Math.max(1, Math.min(MAX_RUN, Math.floor((runChars() * serialised) / chars)));
  }
  yield { kind: 'text', text: ']}' };
}

/** A piece as the text it adds (a run: its entries, after a `,` unless first). */
function pieceText(piece: BundleJsonPiece): string {
  if (piece.kind === 'text') return piece.text;
  const entries = piece.array.slice(1, -1);
  return piece.first ? entries : `,${entries}`;
}

/**
 * `JSON.stringify(bundle)` cut into parts of about `partChars` characters, never inside an entry.
 *
 * Each run of entries is sized to fill what is left of the part under way, so that a part is about
 * one run: one string per part, which halves the garbage (and the time) of joining many.
 * @returns the parts, in order; one part for a bundle shorter than `partChars`
 */
export function* bundleJsonParts(bundle: Bundle, partChars = BUNDLE_PART_CHARS, options: BundleJsonOptions = {}): Generator<string, void, undefined> {
  let pieces: string[] = [];
  let size = 0;
  let first = true;
  for (const piece of bundleJsonPieces(bundle, () => Math.max(1, partChars - size), options)) {
    const text = pieceText(piece);
    pieces.push(text);
    size += text.length;
    // Never cut after the head alone: the first part holds the first entry (readBundleHead).
    if (size >= partChars && !first) {
      yield joined(pieces);
      pieces = [];
      size = 0;
    }
    first = false;
  }
  if (pieces.length > 0) yield joined(pieces);
}

/** The pieces as one string (the piece itself when there is one, no copy). */
function joined(pieces: readonly string[]): string {
  return pieces.length === 1 ? (pieces[0] ?? '') : pieces.join('');
}

/**
 * `JSON.stringify(bundle)` as UTF-8 bytes, cut into parts of about `partBytes` bytes, never inside an
 * entry (so each part is whole UTF-8 text on its own).
 *
 * For handing a large bundle to another thread and on to PostgreSQL: each part owns its
 * `ArrayBuffer` (transferable, no copy), the text is encoded once, here, and no string larger than
 * a run of entries (~64 K characters) is ever made, so the serialising thread's garbage dies young
 * and the receiving thread holds no copy of the text as strings.
 * @returns the parts, in order; each a view of its own ArrayBuffer starting at offset 0
 */
export function* bundleJsonByteParts(bundle: Bundle, partBytes = BUNDLE_PART_BYTES, options: BundleJsonOptions = {}): Generator<Uint8Array, void, undefined> {
  let part = Buffer.allocUnsafeSlow(partBytes);
  let used = 0;
  let pieceNo = 0;
  const fullRun = Math.min(BYTE_RUN_CHARS, partBytes);
  // Fill what is left of the part; when little is, a full run instead (it starts the next part).
  const runChars = (): number => {
    const left = part.length - used;
    return Math.max(1, left >= fullRun / 4 ? Math.min(fullRun, left) : fullRun);
  };
  for (const piece of bundleJsonPieces(bundle, runChars, options)) {
    const text = piece.kind === 'text' ? piece.text : piece.array;
    const bytes = Buffer.byteLength(text, 'utf8');
    // A run is written with its brackets, then cut in place; its closing `]` need not fit.
    const room = piece.kind === 'text' ? bytes : bytes - 1;
    if (used + room > part.length) {
      // Piece 0 is the head, piece 1 the first run: they stay in one part (readBundleHead), which grows to hold both.
      if (pieceNo < 2) {
        const grown = Buffer.allocUnsafeSlow(used + room);
        part.copy(grown, 0, 0, used);
        part = grown;
      } else {
        yield part.subarray(0, used);
        part = Buffer.allocUnsafeSlow(Math.max(partBytes, room));
        used = 0;
      }
    }
    const written = part.write(text, used, 'utf8');
    if (piece.kind === 'text') used += written;
    else if (piece.first) {
      // `[e1,e2]` → `e1,e2`: the entries moved back over the `[`.
      part.copyWithin(used, used + 1, used + bytes - 1);
      used += bytes - 2;
    } else {
      // `[e3,e4]` → `,e3,e4`: the `[` becomes the `,`.
      part[used] = COMMA;
      used += bytes - 1;
    }
    pieceNo++;
  }
  yield part.subarray(0, used);
}
