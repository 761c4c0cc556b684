/**
 * Entity tags (RFC 9110 §8.8.3) and the tag lists of `If-Match` / `If-None-Match` (§13.1.1, §13.1.2),
 * compared weakly: a tag names a representation by its opaque part, `W/` or not.
 */

/** An entity tag: `"opaque"`, or `W/"opaque"` when weak (same content, other encodings: gzip or not). */
export function entityTag(opaque: string, weak: boolean): string {
  if (!/^[\x21\x23-\x7e]+$/.test(opaque)) throw new RangeError(`an entity tag holds visible ASCII characters but '"': ${JSON.stringify(opaque)}`);
  return `${weak ? 'W/' : ''}"${opaque}"`;
}

/** The opaque part of one entity tag, `W/` or not; undefined when it is not one. */
export function opaquePart(tag: string): string | undefined {
  const m = /^(?:W\/)?"([^"]*)"$/.exec(tag.trim());
  return m ? m[1] : undefined;
}

/**
 * What a precondition header lists: `*` (any current representation), or the opaque parts of its
 * tags (an opaque tag holds no `"`, so a comma inside quotes cannot occur in a valid one; malformed
 * members are left out). Undefined when the header is absent.
 */
export function listedTags(header: string | readonly string[] | undefined): '*' | string[] | undefined {
  if (header === undefined) return undefined;
  const value = typeof header === 'string' ? header : header.join(',');
  if (value.trim() === '*') return '*';
  return (value.match(/(?:W\/)?"[^"]*"/g) ?? []).map((member) => opaquePart(member)).filter((o): o is string => o !== undefined);
}
