/**
 * `Bundle.link` URLs for a page of a search snapshot, in one of two styles real servers use:
 * - `offset`: the query again with `_count` and `_offset` (`…/Observation?patient=…&_count=500&_offset=1000`),
 *   as Medplum, Epic-style and many simple servers do;
 * - `token`: an opaque link to the server base, the way HAPI FHIR pages
 *   (`…/fhir?_getpages=<token>&_getpagesoffset=1000&_count=500&_bundletype=searchset`).
 * Clients must treat both as opaque and just follow `next` (https://hl7.org/fhir/R4/http.html#paging).
 */
import type { BundleLink } from '@medplum/fhirtypes';
import type { SearchSnapshot } from './search-snapshots';

export type PagingStyle = 'offset' | 'token';

export interface PageWindow {
  readonly offset: number;
  readonly count: number;
  readonly total: number;
}

/** The self, first, previous and next links of one page. */
export function pageLinks(baseUrl: string, style: PagingStyle, snapshot: SearchSnapshot, window: PageWindow): BundleLink[] {
  const urlFor = (offset: number): string => pageUrl(baseUrl, style, snapshot, offset, window.count);
  const links: BundleLink[] = [{ relation: 'self', url: urlFor(window.offset) }, { relation: 'first', url: urlFor(0) }];
  if (window.offset > 0 && window.count > 0) {
    links.push({ relation: 'previous', url: urlFor(Math.max(0, window.offset - window.count)) });
  }
  if (window.count > 0 && window.offset + window.count < window.total) {
    links.push({ relation: 'next', url: urlFor(window.offset + window.count) });
  }
  return links;
}

function pageUrl(baseUrl: string, style: PagingStyle, snapshot: SearchSnapshot, offset: number, count: number): string {
  if (style === 'token') {
    const query = new URLSearchParams({
      _getpages: snapshot.token,
      _getpagesoffset: String(offset),
      _count: String(count),
      _bundletype: 'searchset',
    });
    return `${baseUrl}?${query.toString()}`;
  }
  const separator = snapshot.selfPath.includes('?') ? '&' : '?';
  return `${baseUrl}/${snapshot.selfPath}${separator}_count=${count}&_offset=${offset}`;
}
