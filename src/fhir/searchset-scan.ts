/**
 * Where each `entry[i].resource` of a searchset Bundle lies in the bytes received, found by a
 * structural scan of the JSON text (strings skipped with native `indexOf`; of a resource only
 * `resourceType`, `id`, `meta.versionId` and the `reference` of its top-level `subject`/`patient` are decoded). It lets the raw store keep, hash and
 * hand to PostgreSQL each resource as the exact bytes the server sent, without building the
 * resources as objects here or serializing them again.
 *
 * The scan follows JSON.parse where a document is odd (a repeated key: the last one wins) and gives
 * up (returns undefined) on anything it does not understand; callers then parse the page whole.
 * It checks the structure (balanced, every string closed, keys and separators where they belong),
 * not every token: the envelope it returns is parsed with JSON.parse, and each resource is parsed
 * by whoever uses it (PostgreSQL validates each as it stores it as json).
 */

/** Where a resource lies in the body, `[start, end)`, with the members the raw store keys it by (when strings). */
export interface ResourceSpan {
  readonly start: number;
  readonly end: number;
  readonly resourceType?: string;
  readonly id?: string;
  readonly versionId?: string;
  /** `subject.reference` and `patient.reference` (top level, when strings): whom the record is about. */
  readonly subjectReferences?: readonly string[];
}

/** What a scan found. */
export interface SearchsetScan {
  /** Each entry's `resource` (objects only), by entry index. */
  readonly spans: ReadonlyMap<number, ResourceSpan>;
  /** The Bundle's JSON with every spanned resource replaced by `{}` (small; parse it for links and entries). */
  readonly envelope: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

class ScanError extends Error {}

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(b: Buffer, i: number): number {
  while (isSpace(b[i])) i++;
  return i;
}

/** `b[i]` is the opening quote; returns the index after the closing one. */
function skipString(b: Buffer, i: number): number {
  let at = i + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, at);
    if (q < 0) throw new ScanError('unterminated string');
    let backslashes = 0;
    while (b[q - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    at = q + 1;
  }
}

/** The string from the quote at `b[i]` to `end` (after the closing quote), decoded. */
function readString(b: Buffer, i: number, end: number): string {
  return b.subarray(i + 1, end - 1).includes(BACKSLASH) ? (JSON.parse(b.toString('utf8', i, end)) as string) : b.toString('utf8', i + 1, end - 1);
}

/** Skips any JSON value starting at `b[i]` (no leading space); returns the index after it. */
function skipValue(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i);
  if (c !== OPEN_OBJECT && c !== OPEN_ARRAY) {
    // Number or literal: up to the next delimiter.
    let j = i;
    while (j < b.length) {
      const d = b[j];
      if (d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || isSpace(d)) break;
      j++;
    }
    if (j === i) throw new ScanError('empty value');
    return j;
  }
  let depth = 0;
  for (let j = i; j < b.length; j++) {
    const d = b[j];
    if (d === QUOTE) j = skipString(b, j) - 1;
    else if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
    else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  throw new ScanError('unterminated value');
}

/**
 * Walks the members of the object starting at `b[i]`, calling `member(key, valueStart)` which
 * returns the index after the value. Returns the index after the object.
 */
function eachMember(b: Buffer, i: number, member: (key: string, at: number) => number): number {
  if (b[i] !== OPEN_OBJECT) throw new ScanError('expected an object');
  i = skipSpace(b, i + 1);
  if (b[i] === CLOSE_OBJECT) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) throw new ScanError('expected a key');
    const keyEnd = skipString(b, i);
    const key = readString(b, i, keyEnd);
    i = skipSpace(b, keyEnd);
    if (b[i] !== COLON) throw new ScanError('expected a colon');
    i = skipSpace(b, member(key, skipSpace(b, i + 1)));
    if (b[i] === COMMA) i = skipSpace(b, i + 1);
    else if (b[i] === CLOSE_OBJECT) return i + 1;
    else throw new ScanError('expected , or }');
  }
}

/** Reads a resource object at `b[at]`: its end and the members it is keyed by. */
function scanResource(b: Buffer, at: number): ResourceSpan {
  let resourceType: string | undefined;
  let id: string | undefined;
  let versionId: string | undefined;
  let subjectReferences: string[] | undefined;
  const end = eachMember(b, at, (key, valueAt) => {
    if ((key === 'subject' || key === 'patient') && b[valueAt] === OPEN_OBJECT) {
      return eachMember(b, valueAt, (refKey, refAt) => {
        const refEnd = skipValue(b, refAt);
        if (refKey === 'reference' && b[refAt] === QUOTE) (subjectReferences ??= []).push(readString(b, refAt, refEnd));
        return refEnd;
      });
    }
    if (key === 'meta') {
      versionId = undefined;
      if (b[valueAt] !== OPEN_OBJECT) return skipValue(b, valueAt);
      return eachMember(b, valueAt, (metaKey, metaAt) => {
        const metaEnd = skipValue(b, metaAt);
        if (metaKey === 'versionId') versionId = b[metaAt] === QUOTE ? readString(b, metaAt, metaEnd) : undefined;
        return metaEnd;
      });
    }
    const valueEnd = skipValue(b, valueAt);
    if (key === 'resourceType' || key === 'id') {
      const text = b[valueAt] === QUOTE ? readString(b, valueAt, valueEnd) : undefined;
      if (key === 'resourceType') resourceType = text;
      else id = text;
    }
    return valueEnd;
  });
  return { start: at, end, resourceType, id, versionId, ...(subjectReferences ? { subjectReferences } : {}) };
}

/**
 * Scans the Bundle whose JSON is `body` from `from` (after a byte order mark).
 * @returns undefined when the body is not a JSON object this scan can follow
 */
export function scanSearchset(body: Buffer, from = 0): SearchsetScan | undefined {
  let spans = new Map<number, ResourceSpan>();
  try {
    const end = eachMember(body, skipSpace(body, from), (key, at) => {
      if (key !== 'entry' || body[at] !== OPEN_ARRAY) return skipValue(body, at);
      // A repeated "entry" key: JSON.parse keeps the last.
      spans = new Map();
      let i = skipSpace(body, at + 1);
      if (body[i] === CLOSE_ARRAY) return i + 1;
      for (let index = 0; ; index++) {
        if (body[i] === OPEN_OBJECT) {
          i = eachMember(body, i, (entryKey, valueAt) => {
            if (entryKey !== 'resource') return skipValue(body, valueAt);
            if (body[valueAt] !== OPEN_OBJECT) {
              spans.delete(index);
              return skipValue(body, valueAt);
            }
            const span = scanResource(body, valueAt);
            spans.set(index, span);
            return span.end;
          });
        } else i = skipValue(body, i);
        i = skipSpace(body, i);
        if (body[i] === COMMA) i = skipSpace(body, i + 1);
        else if (body[i] === CLOSE_ARRAY) return i + 1;
        else throw new ScanError('expected , or ]');
      }
    });
    if (skipSpace(body, end) !== body.length) return undefined;
  } catch {
    // ScanError, or a string with an invalid escape: not a document this scan follows.
    return undefined;
  }
  // The envelope: the body with each spanned resource cut out (an earlier, repeated "entry" stays).
  const parts: string[] = [];
  let at = from;
  for (const span of [...spans.values()].sort((x, y) => x.start - y.start)) {
    parts.push(body.toString('utf8', at, span.start), '{}');
    at = span.end;
  }
  parts.push(body.toString('utf8', at));
  return { spans, envelope: parts.join('') };
}
