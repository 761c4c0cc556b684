/**
 * A query whose pages go round in circles must stop. Paging follows the server's `next` links
 * (https://hl7.org/fhir/R4/http.html#paging) and ends when a page has none; a server with broken
 * paging never gets there, and the pull would run for ever, storing the same page again and again:
 *
 * - **a loop**: a page's `next` link leads back to a page this run already read (the link of the page
 *   itself, or of an earlier one);
 * - **paging that does not advance**: the links move on, but the pages hold only records the
 *   query's earlier pages had (a server that ignores its own offset parameter sends page one again
 *   and again). {@link IDLE_PAGES_TO_STOP} such pages in a row stop the query. A page with no
 *   records at all does not count (some servers filter after paging and send empty pages); a
 *   repeated `_include`d resource does not make a page idle while it has new matches;
 * - **paging that does not end**: {@link EMPTY_PAGES_TO_STOP} pages in a row with no records at all
 *   (a server that puts a `next` link on every page, past the end of its results).
 *
 * Either way the query fails with the reason (permanent: asking again gets the same); the pages read
 * before are kept. The guard covers one run of the task: a run that starts over (expired paging
 * token) or resumes after a crash starts a new one.
 */
import { FhirClientError } from '../fhir';
import type { LogMessage } from '../log';
import type { PageEntry } from './page-resources';

/**
 * Pages in a row holding only records the query already had that stop it. One: in a search's pages
 * a record comes once, and a query stuck on its first page must not pass for complete when it has
 * only two (a live result set that shifts between requests would have to move by a whole page).
 */
export const IDLE_PAGES_TO_STOP = 1;

/**
 * Pages in a row with no records at all that stop a query: far more than a server filtering records
 * after paging ever sends in a row, few enough that a query never runs for ever.
 */
export const EMPTY_PAGES_TO_STOP = 50;

/**
 * The server's paging went round in circles: permanent (it will do the same again). Its message is
 * page numbers in this service's words: logged whole (`LogMessage`, src/log.ts).
 */
export class PagingLoopError extends FhirClientError implements LogMessage {
  readonly retryable = false;
  get logMessage(): string {
    return this.message;
  }
}

/** Watches one run of a query's pages (see the module comment). */
export class PagingGuard {
  /** The page number each URL read in this run was (the first request has none). */
  private readonly pageOfUrl = new Map<string, number>();
  /**
   * The records read in this run, by the first 52 bits of the SHA-256 of their bytes (which hold their
   * type, id and version): a number, not a 64-character string, so a query of 100,000 records keeps a
   * few MB here. That any two of 100,000 records share 52 bits is about a one-in-a-million chance, and
   * it would only make one page look less new than it is.
   */
  private readonly seen = new Set<number>();
  private idlePages = 0;
  private emptyPages = 0;

  /**
   * Takes in page `pageNo`, read from `url` (null for the query's first request), before it is stored.
   * @throws PagingLoopError when it makes {@link IDLE_PAGES_TO_STOP} pages in a row with nothing new, or
   *   {@link EMPTY_PAGES_TO_STOP} with nothing at all
   */
  admit(pageNo: number, url: string | null, entries: readonly PageEntry[]): void {
    if (url !== null && !this.pageOfUrl.has(url)) this.pageOfUrl.set(url, pageNo);
    let fresh = 0;
    for (const e of entries) {
      const key = Number.parseInt(e.sha256.slice(0, 13), 16);
      if (!this.seen.has(key)) {
        this.seen.add(key);
        fresh += 1;
      }
    }
    if (fresh > 0) this.idlePages = 0;
    else if (entries.length > 0) this.idlePages += 1;
    this.emptyPages = entries.length === 0 ? this.emptyPages + 1 : 0;
    if (this.emptyPages >= EMPTY_PAGES_TO_STOP) {
      const kept = pageNo - this.emptyPages;
      throw new PagingLoopError(
        `pages ${kept + 1}–${pageNo} of this query held no records: the server's paging does not end, ` +
          `so the query stopped (${kept > 0 ? `what ${pagesText(1, kept)} held is kept` : 'nothing was stored'})`,
      );
    }
    if (this.idlePages >= IDLE_PAGES_TO_STOP) {
      const kept = pageNo - this.idlePages;
      throw new PagingLoopError(
        `${pagesText(kept + 1, pageNo)} of this query held only records its earlier pages had: the server's paging does not advance, ` +
          `so the query stopped (what ${pagesText(1, kept)} held is kept)`,
      );
    }
  }

  /**
   * The page an already-read `nextUrl` leads back to, if it does: the query must stop after page
   * `pageNo` (which is stored: it may hold records of its own).
   */
  loopsBackTo(nextUrl: string | undefined): number | undefined {
    return nextUrl === undefined ? undefined : this.pageOfUrl.get(nextUrl);
  }
}

/** The error of a query stopped after page `pageNo` because its next link leads back to page `target`. */
export function pagingLoopError(pageNo: number, target: number): PagingLoopError {
  return new PagingLoopError(
    `the next link of page ${pageNo} of this query leads back to page ${target}: the server's paging goes round in a circle, ` +
      `so the query stopped (what ${pagesText(1, pageNo)} held is kept)`,
  );
}

/** `page 3` or `pages 1–3`. */
function pagesText(from: number, to: number): string {
  return from === to ? `page ${from}` : `pages ${from}–${to}`;
}
