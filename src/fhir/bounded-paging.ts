/**
 * Reading the pages of a search by its `next` links (https://hl7.org/fhir/R4/http.html#paging), as
 * the server gives them (opaque, on the endpoint's origin: the client refuses others), bounded: at
 * most `maxPages` pages, never a page twice. For look-ups that must read past the first page because
 * a server pages as it likes (`_count` is only a hint, https://hl7.org/fhir/R4/search.html#count) or
 * ignored a parameter and answered with far more than asked (https://hl7.org/fhir/R4/search.html#errors).
 * @packageDocumentation
 */
import { OffOriginUrlError } from './errors';
import type { IdentifierPager, IdentifierSearchPage } from './identifier-match';

/**
 * How the paging ended: `visit` stopped it, the last page (no `next` link) was read, or it stopped
 * before the last page — the page bound reached, a `next` link back to a page already read, or a
 * `next` link off the endpoint's origin (refused by the client, not followed).
 */
export type PagingEnd = 'stopped-by-visit' | 'last-page' | 'page-limit' | 'paging-loop' | 'off-origin-next-link';

/**
 * Visits `first` and the pages its `next` links lead to, in order, until `visit` answers `stop`,
 * the last page, or a bound (see {@link PagingEnd}); how it ended and the pages read.
 */
export async function visitPages(
  client: IdentifierPager,
  first: IdentifierSearchPage,
  maxPages: number,
  visit: (page: IdentifierSearchPage) => 'stop' | 'next',
): Promise<{ readonly end: PagingEnd; readonly pages: number }> {
  const followed = new Set<string>();
  let page = first;
  for (let pages = 1; ; pages++) {
    if (visit(page) === 'stop') return { end: 'stopped-by-visit', pages };
    const next = page.nextUrl;
    if (next === undefined) return { end: 'last-page', pages };
    if (pages >= maxPages) return { end: 'page-limit', pages };
    if (followed.has(next)) return { end: 'paging-loop', pages };
    followed.add(next);
    try {
      page = await client.fetchPage(next);
    } catch (err) {
      if (err instanceof OffOriginUrlError) return { end: 'off-origin-next-link', pages };
      throw err;
    }
  }
}
