/**
 * Conditional GET for representations that never change once written — a bundle version, a signed
 * report version, an uploaded file: the answer carries an `ETag`, and a client that sends it back in
 * `If-None-Match` gets `304 Not Modified` without the body (RFC 9110 §13.1.2, §15.4.5). A case bundle
 * is up to ~100 MB; an EHR's viewer or a specialist's tool that keeps its copy need not fetch it again
 * to learn it has the latest. (Answers stay `Cache-Control: no-store`: nothing with PHI is kept by
 * shared caches or browsers; a client that stores a copy does so on purpose.)
 */
import type { Request, Response } from 'express';
import { listedTags, opaquePart } from './entity-tags';
import { setResponseHeaders } from './response-headers';

/**
 * Whether an `If-None-Match` header matches `etag` by weak comparison (RFC 9110 §8.8.3.2), as GET
 * requires: `*`, or any listed tag with the same opaque part.
 */
export function ifNoneMatchHits(header: string | readonly string[] | undefined, etag: string): boolean {
  const listed = listedTags(header);
  const wanted = opaquePart(etag);
  return listed === '*' || (listed !== undefined && wanted !== undefined && listed.includes(wanted));
}

/**
 * Answers `304 Not Modified` when the request's `If-None-Match` matches `etag`, with `headers` (the
 * ones the 200 would carry that matter to a cache: `ETag`, version headers, `Vary` — added to the
 * fields the answer already varies on, as the 200's are).
 * @returns whether it answered (the handler then sends nothing more)
 */
export function answeredNotModified(req: Request, res: Response, etag: string, headers: Readonly<Record<string, string>> = {}): boolean {
  if (!ifNoneMatchHits(req.headers['if-none-match'], etag)) return false;
  res.status(304);
  res.setHeader('ETag', etag);
  setResponseHeaders(res, headers);
  res.end();
  return true;
}
