/**
 * Search hits are checked against what was searched for. A server that does not support a search
 * parameter ignores it and answers as if it had not been sent — every Patient, every
 * DiagnosticReport — unless the client asks for strict handling
 * (https://hl7.org/fhir/R4/search.html#errors): a hit of an identifier search is taken only when
 * the resource itself carries that identifier. Otherwise a lenient server's unrelated Patient could
 * be taken for the child, or an unrelated report for ours ("already there", so never written).
 *
 * The other way round, such an answer need not hold ours on its first page: a page with matches
 * that do not carry the identifier says the server did not filter ({@link IdentifierPage.unfiltered}),
 * and {@link scanPagesForIdentifier} then looks through its pages (https://hl7.org/fhir/R4/http.html#paging),
 * within a bound.
 * @packageDocumentation
 */
import type { Bundle, FhirResource } from 'fhir/r4';
import { visitPages, type PagingEnd } from './bounded-paging';

/** An identifier as `system|value` (FHIR token search syntax) split in two. */
export interface IdentifierToken {
  readonly system: string;
  readonly value: string;
}

/** `system|value` → its parts (the value may itself hold `|`). */
export function parseIdentifierToken(token: string): IdentifierToken {
  const bar = token.indexOf('|');
  return bar < 0 ? { system: '', value: token } : { system: token.slice(0, bar), value: token.slice(bar + 1) };
}

function sameIdentifier(candidate: unknown, wanted: IdentifierToken): boolean {
  if (typeof candidate !== 'object' || candidate === null) return false;
  const { system, value } = candidate as { system?: unknown; value?: unknown };
  return value === wanted.value && (wanted.system === '' || system === wanted.system);
}

/**
 * Whether `resource` carries the identifier (in `identifier`, or a DocumentReference's
 * `masterIdentifier`): system and value compared exactly (a system-less token matches any system).
 */
export function carriesIdentifier(resource: object, wanted: IdentifierToken): boolean {
  const { identifier, masterIdentifier } = resource as { identifier?: unknown; masterIdentifier?: unknown };
  if (Array.isArray(identifier) && identifier.some((i) => sameIdentifier(i, wanted))) return true;
  return sameIdentifier(masterIdentifier, wanted);
}

/** A search page as the look-ups here read it (the endpoint client's `SearchPage` fits). */
export interface IdentifierSearchPage {
  readonly bundle: Bundle;
  /** The page's `next` link, resolved (https://hl7.org/fhir/R4/http.html#paging); absent on the last page. */
  readonly nextUrl?: string;
}

/** What {@link searchByIdentifier} needs of a FHIR client (the endpoint client's first-page search). */
export interface IdentifierSearcher {
  search(type: string, params: Readonly<Record<string, string>>): Promise<IdentifierSearchPage>;
}

/** One page of an identifier search, judged against the identifier searched for. */
export interface IdentifierPage<T extends FhirResource> {
  /** `match`-mode entries of the type searched that carry the identifier, in page order. */
  readonly hits: T[];
  /**
   * The page holds `match`-mode entries of the type searched that do NOT carry the identifier: the
   * server did not filter by it. A server that does not support a search parameter may ignore it
   * and answer as if it had not been sent (lenient handling, https://hl7.org/fhir/R4/search.html#errors):
   * then a hit need not be on this page, and "not on this page" does not mean "not there".
   */
  readonly unfiltered: boolean;
  /** The page's `next` link, when it has one. */
  readonly nextUrl?: string;
}

/**
 * A search value's text with FHIR's escapes: `\` before each `\`, `,`, `$` and `|`, which a search
 * value otherwise reads as an escape, a list of values (OR), a composite or a token's system
 * separator (an MRN `12,34` unescaped asks for 12 or 34).
 * @see https://hl7.org/fhir/R4/search.html#escaping
 */
export function escapeSearchValue(text: string): string {
  return text.replace(/[\\,$|]/g, '\\$&');
}

/**
 * The identifier as a FHIR token search value: `system|value`, or `value` alone without a system,
 * each part escaped ({@link escapeSearchValue}).
 */
export function identifierToken(wanted: IdentifierToken): string {
  return wanted.system === '' ? escapeSearchValue(wanted.value) : `${escapeSearchValue(wanted.system)}|${escapeSearchValue(wanted.value)}`;
}

/** The `match`-mode entries of `type` on a searchset page (an entry without `search.mode` counts as a match). */
function matchesOf(bundle: Bundle, type: string): FhirResource[] {
  return (bundle.entry ?? []).flatMap((e) => {
    const r = e.resource;
    const isMatch = e.search?.mode === undefined || e.search.mode === 'match';
    return r && r.resourceType === type && isMatch ? [r] : [];
  });
}

/** Judges one page of an identifier search of `type`: its hits, and whether the server filtered at all. */
export function judgeIdentifierPage<T extends FhirResource>(page: IdentifierSearchPage, type: T['resourceType'], wanted: IdentifierToken): IdentifierPage<T> {
  const matches = matchesOf(page.bundle, type);
  const hits = matches.filter((r) => carriesIdentifier(r, wanted)) as T[];
  return { hits, unfiltered: hits.length < matches.length, ...(page.nextUrl !== undefined ? { nextUrl: page.nextUrl } : {}) };
}

/**
 * `GET [base]/[type]?identifier=system|value`: the first page, judged ({@link judgeIdentifierPage}).
 * @param extra further search parameters (e.g. `_count`)
 */
export async function searchIdentifierPage<T extends FhirResource>(
  client: IdentifierSearcher,
  type: T['resourceType'],
  wanted: IdentifierToken,
  extra: Readonly<Record<string, string>> = {},
): Promise<IdentifierPage<T>> {
  const page = await client.search(type, { ...extra, identifier: identifierToken(wanted) });
  return judgeIdentifierPage<T>(page, type, wanted);
}

/**
 * `GET [base]/[type]?identifier=system|value` and the hits that are really ours: `match`-mode
 * entries of `type` that carry the identifier (a lenient server may ignore the parameter).
 * The first page only: on a lenient server, see {@link IdentifierPage.unfiltered} and
 * {@link scanPagesForIdentifier}.
 */
export async function searchByIdentifier<T extends FhirResource>(
  client: IdentifierSearcher,
  type: T['resourceType'],
  wanted: IdentifierToken,
  extra: Readonly<Record<string, string>> = {},
): Promise<T[]> {
  return (await searchIdentifierPage<T>(client, type, wanted, extra)).hits;
}

/** What {@link scanPagesForIdentifier} needs of a FHIR client: a search, and its `next` links followed (`FhirEndpointClient` fits). */
export interface IdentifierPager extends IdentifierSearcher {
  /** Follows a `next` link; throws `OffOriginUrlError`, before any request, for one off the endpoint's origin. */
  fetchPage(url: string): Promise<IdentifierSearchPage>;
}

/**
 * Why a scan ended before the last page: the page bound was reached, a `next` link led back to a
 * page already read, or a `next` link named another origin (refused by the client, not followed).
 */
export type ScanStop = Exclude<PagingEnd, 'stopped-by-visit' | 'last-page'>;

/** How a {@link scanPagesForIdentifier} ended, with the pages it read. */
export type IdentifierScan<T extends FhirResource> =
  /** The first resource, in page order, that carries the identifier. */
  | { readonly outcome: 'found'; readonly resource: T; readonly pages: number }
  /** Every page read (the last had no `next` link): none carries it. */
  | { readonly outcome: 'absent'; readonly pages: number }
  /** Stopped before the last page without finding it: not found, but not known to be absent either. */
  | { readonly outcome: 'stopped'; readonly reason: ScanStop; readonly pages: number };

/** Options of {@link scanPagesForIdentifier}. */
export interface IdentifierScanOptions {
  /** Pages read at most, the first included (≥ 1). */
  readonly maxPages: number;
  /** Further search parameters of the first request (e.g. `_count`); the `next` links carry them on. */
  readonly params?: Readonly<Record<string, string>>;
}

/**
 * Looks for the resource of `type` that carries the identifier through the pages of an identifier
 * search, following the searchset's `next` links (https://hl7.org/fhir/R4/http.html#paging) as the
 * server gives them (opaque, on the endpoint's origin: the client refuses others). For a server
 * that may have ignored the `identifier` parameter and answered with every resource of the type
 * (https://hl7.org/fhir/R4/search.html#errors). Bounded: at most `maxPages` pages, and never a page
 * twice.
 */
export async function scanPagesForIdentifier<T extends FhirResource>(
  client: IdentifierPager,
  type: T['resourceType'],
  wanted: IdentifierToken,
  options: IdentifierScanOptions,
): Promise<IdentifierScan<T>> {
  let found: T | undefined;
  const first = await client.search(type, { ...options.params, identifier: identifierToken(wanted) });
  const { end, pages } = await visitPages(client, first, options.maxPages, (page) => {
    [found] = judgeIdentifierPage<T>(page, type, wanted).hits;
    return found ? 'stop' : 'next';
  });
  if (found) return { outcome: 'found', resource: found, pages };
  if (end === 'last-page' || end === 'stopped-by-visit') return { outcome: 'absent', pages };
  return { outcome: 'stopped', reason: end, pages };
}
