import type { Bundle, FhirResource } from 'fhir/r4';
import { MalformedResponseError } from './errors';
import { baseWithSlash } from './url-guard';

/**
 * Parsing of FHIR JSON response bodies (https://hl7.org/fhir/R4/json.html). The bytes are kept
 * as received (the caller stores them raw); parsing only checks the shape we depend on.
 */

/** One page of search results, with the exact bytes received (after content decoding). */
export interface SearchPage {
  readonly bundle: Bundle;
  /** The `next` link, resolved against the base URL; follow it with `fetchPage` (same-origin enforced there). */
  readonly nextUrl?: string;
  /** `raw.length`: bytes of the decoded body. */
  readonly bytes: number;
  /** Bytes on the wire (compressed size when gzip). */
  readonly wireBytes: number;
  /** The body exactly as received (after gunzip), for storing unchanged. */
  readonly raw: Buffer;
}

/** Parses a JSON body; a parse failure (truncated page, HTML error page) is retryable. */
export function parseJsonBody(raw: Buffer): unknown {
  // A UTF-8 byte order mark is legal in the wire form but not in JSON.parse.
  const start = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  try {
    return JSON.parse(raw.toString('utf8', start));
  } catch (err) {
    throw new MalformedResponseError('body is not valid JSON', true, { cause: err });
  }
}

/** Parses a body that must be a resource of `resourceType`. */
export function parseResource<T extends FhirResource>(raw: Buffer, resourceType: T['resourceType'] | undefined): T {
  const value = parseJsonBody(raw);
  if (typeof value !== 'object' || value === null || typeof (value as { resourceType?: unknown }).resourceType !== 'string') {
    throw new MalformedResponseError('body is not a FHIR resource', false);
  }
  if (resourceType !== undefined && (value as { resourceType: string }).resourceType !== resourceType) {
    throw new MalformedResponseError(`expected ${resourceType}`, false);
  }
  return value as T;
}

/** Builds a {@link SearchPage} from a Bundle body. */
export function parseSearchPage(raw: Buffer, wireBytes: number, baseUrl: string): SearchPage {
  const bundle = parseResource<Bundle>(raw, 'Bundle');
  const next = bundle.link?.find((link) => link.relation === 'next')?.url;
  let nextUrl: string | undefined;
  if (next) {
    try {
      nextUrl = new URL(next, baseWithSlash(baseUrl)).toString();
    } catch {
      throw new MalformedResponseError('next link is not a URL', false);
    }
  }
  return { bundle, nextUrl, bytes: raw.length, wireBytes, raw };
}
