/**
 * Safe names for zip entries (the "zip slip" defence). A CD export zipped on any system must extract
 * strictly inside its destination folder, so an entry name is accepted only as a plain relative path.
 *
 * @see https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT §4.4.17 (file name: relative, forward slashes)
 * @packageDocumentation
 */

/** The verdict on one entry name: the normalised relative path, or why it is refused. */
export type EntryNameCheck =
  | { readonly ok: true; readonly relativePath: string; readonly isDirectory: boolean }
  | { readonly ok: false; readonly reason: string };

const MAX_NAME_LENGTH = 1024;
const MAX_SEGMENT_BYTES = 255;

/**
 * Checks and normalises a zip entry name. Backslashes (written by some Windows tools) count as
 * separators. Refused: empty names, absolute paths (`/x`, `C:x`, `\\server\x`), `..` segments, NUL or
 * other control characters, over-long names or segments. `.` and empty segments are dropped.
 */
export function checkEntryName(name: string): EntryNameCheck {
  if (name.length === 0) return { ok: false, reason: 'empty file name' };
  if (name.length > MAX_NAME_LENGTH) return { ok: false, reason: 'file name too long' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return { ok: false, reason: 'control character in file name' };
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[a-zA-Z]:/.test(slashed)) return { ok: false, reason: 'absolute path refused' };
  const isDirectory = slashed.endsWith('/');
  const segments: string[] = [];
  for (const segment of slashed.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: 'path traversal (..) refused' };
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return { ok: false, reason: 'path segment too long' };
    segments.push(segment);
  }
  if (segments.length === 0) return { ok: false, reason: 'empty file name' };
  return { ok: true, relativePath: segments.join('/'), isDirectory };
}
