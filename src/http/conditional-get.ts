import type { Request, Response } from 'express';

/**
 * Conditional GET for representations that never change once written — a bundle version, a signed
 * report version, an uploaded file: the answer carries an `ETag`, and a client that sends it back in
 * `If-None-Match` gets `304 Not Modified` without the body (RFC 9110 §13.1.2, §15.4.5). A case bundle
 * is up to ~100 MB; an EHR's viewer or a specialist's tool that keeps its copy need not fetch it again
 * to learn it has the latest. (Answers stay `Cache-Control: no-store`: nothing with PHI is kept by
 * shared caches or browsers; a client that stores a copy does so on purpose.)
 */

/** An entity tag: `"opaque"`, or `W/"opaque"` when weak (same content, other encodings: gzip or not). */
export function entityTag(opaque: string, weak: boolean): string {
  if (!/^[\x21\x23-\x7e]+$/.test(opaque)) throw new RangeError(`an entity tag holds visible ASCII characters but '"': ${JSON.stringify(opaque)}`);
  return `${weak ? 'W/' : ''}"${opaque}"`;
}

/** The opaque part of an entity tag (weak comparison ignores `W/`). */
function opaquePart(tag: string): string | undefined {
  const m = /^(?:W\/)?"([^"]*)"$/.exec(tag.trim());
  return m ? m[1] : undefined;
}

/**
 * Whether an `If-None-Match` header matches `etag` by weak comparison (RFC 9110 §8.8.3.2), as GET
 * requires: `*`, or any listed tag with the same opaque part. Malformed members match nothing.
 */
export function ifNoneMatchHits(header: string | readonly string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = typeof header === 'string' ? header : header.join(',');
  if (value.trim() === '*') return true;
  const wanted = opaquePart(etag);
  if (wanted === undefined) return false;
  // Members are separated by commas; an opaque tag holds no '"', so quoted commas cannot occur in valid ones.
  return (value.match(/(?:W\/)?"[^"]*"/g) ?? []).some((member) => opaquePart(member) === wanted);
}

/**
 * Answers `304 Not Modified` when the request's `If-None-Match` matches `etag`, with `headers` (the
 * ones the 200 would carry that matter to a cache: `ETag`, version headers, `Vary`).
 * @returns whether it answered (the handler then sends nothing more)
 */
export function answeredNotModified(req: Request, res: Response, etag: string, headers: Readonly<Record<string, string>> = {}): boolean {
  if (!ifNoneMatchHits(req.headers['if-none-match'], etag)) return false;
  res.status(304);
  res.setHeader('ETag', etag);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end();
  return true;
}
