/**
 * How a query's pages are counted in its progress. A search with `_include`
 * (https://hl7.org/fhir/R4/search.html#include: `ImagingStudy:endpoint`, `MedicationRequest:medication`)
 * brings, on each page, the resources that page's matches reference, marked `search.mode = include`
 * (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode): the same Endpoint or
 * Medication comes again on every page whose matches point at it. The raw store keeps it once (its rows
 * are keyed by type, id and version); the progress counts it once per query too: each match counts,
 * an included resource only the first time the query's current run brings it (by type and id).
 * `Bundle.total` (`expectedMatches`) counts the matches only, as the server says it.
 * @packageDocumentation
 */
import type { PageEntry } from './page-resources';

/** A task's counters as its committed pages left them (those this module adds a page to). */
export interface QueryCounters {
  /** The type the query asks for (`*` for a `$everything` stream of several types). */
  readonly resourceType: string;
  readonly resources: number;
  readonly typeCounts: Readonly<Record<string, number>>;
  /** `Type/id` of the distinct included resources counted so far, in the order first brought. */
  readonly included: readonly string[];
}

/** A page's effect on the counters: what `resources` grows by, and the new per-type counts and included keys. */
export interface PageCount {
  readonly resources: number;
  readonly typeCounts: Record<string, number>;
  readonly included: string[];
}

/**
 * Whether an entry is there because a match references it rather than as a match: `search.mode =
 * include`; a server that leaves the mode out is read by type (a resource of another type than the
 * query's, in a search of one type).
 */
export function isIncluded(entry: Pick<PageEntry, 'type' | 'searchMode'>, queryType: string): boolean {
  if (entry.searchMode !== undefined) return entry.searchMode === 'include';
  return queryType !== '*' && entry.type !== queryType;
}

/** Counts a page's resources onto a query's counters (see the module comment). */
export function countPage(counters: QueryCounters, entries: readonly Pick<PageEntry, 'type' | 'id' | 'searchMode'>[]): PageCount {
  const typeCounts = { ...counters.typeCounts };
  const included = [...counters.included];
  const seen = new Set(included);
  let resources = 0;
  for (const entry of entries) {
    if (isIncluded(entry, counters.resourceType)) {
      const key = `${entry.type}/${entry.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      included.push(key);
    }
    resources += 1;
    typeCounts[entry.type] = (typeCounts[entry.type] ?? 0) + 1;
  }
  return { resources, typeCounts, included };
}
