import { isUtf8 } from 'node:buffer';
import type { Bundle, FhirResource } from 'fhir/r4';
import { MalformedResponseError } from './errors';
import { scanSearchset, type ResourceSpan } from './searchset-scan';
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
  /**
   * The response's `Date` header (https://www.rfc-editor.org/rfc/rfc9110#field.date): when the server
   * answered, by its own clock. Absent when it sent none.
   */
  readonly date?: string;
}

/**
 * Reads a search response body into a page (e.g. {@link parseSearchPage}, {@link scanSearchPage}):
 * `baseUrl` the endpoint's, `date` the response's `Date` header, `pageUrl` the URL the page was
 * fetched from (a query-only `next` link is relative to it, {@link nextLinkOf}).
 */
export type PageReader<P> = (raw: Buffer, wireBytes: number, baseUrl: string, date?: string, pageUrl?: string) => P;

/** Bytes of a UTF-8 byte order mark at the start (legal in the wire form, not in JSON.parse): 3 or 0. */
function bomLength(raw: Buffer): number {
  return raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
}

/** Parses a JSON body; a parse failure (truncated page, HTML error page) is retryable. */
export function parseJsonBody(raw: Buffer): unknown {
  return parseJsonText(raw.toString('utf8', bomLength(raw)));
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MalformedResponseError('body is not valid JSON', true, { cause: err });
  }
}

/** Checks that a parsed body is a resource of `resourceType`. */
function asResource<T extends FhirResource>(value: unknown, resourceType: T['resourceType'] | undefined): T {
  if (typeof value !== 'object' || value === null || typeof (value as { resourceType?: unknown }).resourceType !== 'string') {
    throw new MalformedResponseError('body is not a FHIR resource', false);
  }
  if (resourceType !== undefined && (value as { resourceType: string }).resourceType !== resourceType) {
    throw new MalformedResponseError(`expected ${resourceType}`, false);
  }
  return value as T;
}

/** Parses a body that must be a resource of `resourceType`. */
export function parseResource<T extends FhirResource>(raw: Buffer, resourceType: T['resourceType'] | undefined): T {
  return asResource<T>(parseJsonBody(raw), resourceType);
}

/** A resource read with the bytes it came in (a byte order mark left out), for a store that keeps them as received. */
export interface ResourceAsReceived<T extends FhirResource = FhirResource> {
  readonly resource: T;
  readonly bytes: Buffer;
}

/** {@link parseResource}, keeping the body's bytes beside the resource. */
export function parseResourceAsReceived<T extends FhirResource>(raw: Buffer, resourceType: T['resourceType'] | undefined): ResourceAsReceived<T> {
  return { resource: parseResource<T>(raw, resourceType), bytes: raw.subarray(bomLength(raw)) };
}

/**
 * The Bundle's `next` link, resolved against the base URL, as FHIR reads relative URLs
 * (`Observation?page=2`, `Patient/1/$everything?page=2`); a query-only link (`?page=2`) against the
 * URL of the page it came from, where known, as RFC 3986 §5.2 resolves it: the same search, the next
 * page (against the base it would name a search of the whole server).
 * @see https://hl7.org/fhir/R4/http.html#paging
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-5.2
 */
function nextLinkOf(bundle: Bundle, baseUrl: string, pageUrl?: string): string | undefined {
  const next = Array.isArray(bundle.link) ? bundle.link.find((link) => link?.relation === 'next')?.url : undefined;
  if (!next) return undefined;
  try {
    return new URL(next, next.startsWith('?') && pageUrl !== undefined ? pageUrl : baseWithSlash(baseUrl)).toString();
  } catch {
    throw new MalformedResponseError('next link is not a URL', false);
  }
}

/** Builds a {@link SearchPage} from a Bundle body. */
export function parseSearchPage(raw: Buffer, wireBytes: number, baseUrl: string, date?: string, pageUrl?: string): SearchPage {
  const bundle = parseResource<Bundle>(raw, 'Bundle');
  return { bundle, nextUrl: nextLinkOf(bundle, baseUrl, pageUrl), bytes: raw.length, wireBytes, raw, ...(date !== undefined ? { date } : {}) };
}

/**
 * A page of search results read for storing it raw: the Bundle's envelope is parsed, its resources
 * are located in `raw` but not parsed (searchset-scan.ts). Where the scan could not follow the
 * body (not UTF-8, or JSON it does not understand), the page is parsed whole and `spans` is empty.
 */
export interface ScannedSearchPage extends Omit<SearchPage, 'bundle'> {
  /** The Bundle; an entry whose index is in `spans` has `resource: {}` here (its bytes are at the span). */
  readonly envelope: Bundle;
  readonly spans: ReadonlyMap<number, ResourceSpan>;
}

/**
 * Reads a Bundle body as a {@link ScannedSearchPage}. Everything but the resources' content is
 * checked as {@link parseSearchPage} checks it; each resource is parsed by its user (the raw store
 * validates it as json, and refuses a page with a resource that is not valid JSON).
 */
export function scanSearchPage(raw: Buffer, wireBytes: number, baseUrl: string, date?: string, pageUrl?: string): ScannedSearchPage {
  const scan = isUtf8(raw) ? scanSearchset(raw, bomLength(raw)) : undefined;
  const dated = date !== undefined ? { date } : {};
  if (!scan) {
    const bundle = parseResource<Bundle>(raw, 'Bundle');
    return { envelope: bundle, spans: new Map(), nextUrl: nextLinkOf(bundle, baseUrl, pageUrl), bytes: raw.length, wireBytes, raw, ...dated };
  }
  const envelope = asResource<Bundle>(parseJsonText(scan.envelope), 'Bundle');
  return { envelope, spans: scan.spans, nextUrl: nextLinkOf(envelope, baseUrl, pageUrl), bytes: raw.length, wireBytes, raw, ...dated };
}
