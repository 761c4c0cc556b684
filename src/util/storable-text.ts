/**
 * Text PostgreSQL can store. A `text` or `jsonb` value holding U+0000, or a UTF-16 surrogate without
 * its pair (JSON `"\ud800"`), is refused with an error, and the statement fails: one odd byte in a
 * file name or a DICOM/PDF header value would fail the whole upload on every retry. Uploaded files
 * carry such bytes (zip entry names, padded DICOM values, PDF strings in UTF-16 without a BOM), so
 * every name, reason and metadata string is made storable before it is written. File names are
 * also made honest ({@link storableFileName}): no control or bidirectional formatting character.
 * @see https://www.postgresql.org/docs/current/datatype-json.html (U+0000 and lone surrogates refused)
 * @packageDocumentation
 */

/** What a NUL or an unpaired surrogate becomes: visible, so a reviewer sees something was there. */
const REPLACEMENT_CHARACTER = '\uFFFD';

/** U+0000, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` with every NUL and unpaired surrogate replaced by U+FFFD (the same string when there is none). */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, REPLACEMENT_CHARACTER);
}

/** Whether `text` holds a character PostgreSQL cannot store (request bodies are refused for it: `http/json-text.ts`). */
export function isUnstorableText(text: string): boolean {
  return text.search(UNSTORABLE) !== -1;
}

/**
 * What makes a file name lie about itself when shown: C0 and C1 control characters and DEL (a line
 * break or a terminal escape in a listing), the line and paragraph separators, and the Unicode
 * bidirectional formatting characters (`Bidi_Control`: U+202A–U+202E embeddings and overrides,
 * U+2066–U+2069 isolates, U+200E/U+200F/U+061C marks), which reorder what follows them:
 * `invoice\u202Efdp.exe` shows as `invoiceexe.pdf`.
 * @see https://www.unicode.org/reports/tr9/#Directional_Formatting_Characters
 * @see https://trojansource.codes/ (CVE-2021-42574)
 */
const DECEPTIVE_IN_NAME = /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/gu;

/**
 * A file name as it is stored and shown: storable ({@link storableText}) and honest — each control
 * or bidirectional formatting character replaced by U+FFFD, so the case manager sees the name in its
 * real order, and that something was there (`invoice\uFFFDfdp.exe`, visibly an `.exe`).
 */
export function storableFileName(name: string): string {
  return storableText(name).replace(DECEPTIVE_IN_NAME, REPLACEMENT_CHARACTER);
}

/**
 * The JSON text of `value` for a `jsonb` column, every string in it (keys too) made storable:
 * metadata mixes values read from uploaded files with ours.
 */
export function storableJson(value: unknown): string {
  return JSON.stringify(value, function replacer(this: unknown, _key: string, v: unknown): unknown {
    if (typeof v === 'string') return storableText(v);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.some(([k]) => isUnstorableText(k)) ? Object.fromEntries(entries.map(([k, x]) => [storableText(k), x])) : v;
  });
}
