/**
 * How a query's pages are counted in its progress. A search with `_include`
 * (https://hl7.org/fhir/R4/search.html#include: `ImagingStudy:endpoint`, `MedicationRequest:medication`)
 * brings, on each page, the resources that page's matches reference, marked `search.mode = include`
 * (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode): the same Endpoint or
 * Medication comes again on every page whose matches point at it. The raw store keeps it once (its rows
 * are keyed by type, id and version); the progress counts it once per query too: each match counts,
 * an included resource only the first time the query's current run brings it (by type and id).
 * `Bundle.total` (`expectedMatches`) counts the matches only, as the server says it.
 *
 * What a page's `_include` should have brought and the page lacks (a server ignoring `_include`) is
 * found here too ({@link missingIncludes}), read by included-follow-up.ts and counted like what the
 * server includes.
 * @packageDocumentation
 */
import { parseReference } from '../normalize/references';
import { isRecord } from '../util/is-record';
import type { PageEntries, PageEntry } from './page-resources';

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

/**
 * What an `_include` of the plan brings: the elements of a match that reference it and the type they
 * point at, as its search parameter's expression reads (R4 `ImagingStudy-endpoint`:
 * `ImagingStudy.endpoint | ImagingStudy.series.endpoint`; `MedicationRequest-medication`:
 * `(MedicationRequest.medication as Reference)`; https://hl7.org/fhir/R4/imagingstudy.html#search,
 * https://hl7.org/fhir/R4/medicationrequest.html#search).
 */
interface IncludePath {
  readonly matchType: string;
  readonly targetType: string;
  /** Each element as its path of member names from the resource. */
  readonly elements: readonly (readonly string[])[];
}

const INCLUDE_PATHS: Readonly<Record<string, IncludePath>> = {
  'ImagingStudy:endpoint': { matchType: 'ImagingStudy', targetType: 'Endpoint', elements: [['endpoint'], ['series', 'endpoint']] },
  'MedicationRequest:medication': { matchType: 'MedicationRequest', targetType: 'Medication', elements: [['medicationReference']] },
};

/** A resource an `_include` should have brought: `Type/id` on the source's own server. */
export interface IncludeTarget {
  /** The `_include` value that should have brought it (`ImagingStudy:endpoint`). */
  readonly include: string;
  readonly type: string;
  readonly id: string;
}

/** The `Reference.reference` strings at `path` in `value` (arrays at any step followed). */
function referencesAt(value: unknown, path: readonly string[]): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => referencesAt(item, path));
  if (!isRecord(value)) return [];
  const [member, ...rest] = path;
  if (member === undefined) return typeof value.reference === 'string' ? [value.reference] : [];
  return referencesAt(value[member], rest);
}

/**
 * The resources the query's `_include` should have brought with a page that the page does not hold:
 * a server may ignore a search parameter it does not support, `_include` among them
 * (https://hl7.org/fhir/R4/search.html#errors, https://hl7.org/fhir/R4/search.html#include), and the
 * references of its matches would then point at nothing in the case bundle. Only references to the
 * source's own server count (relative `Type/id`, or absolute on its base, as normalize resolves them:
 * `parseReference`); one naming another server, a contained resource or a condition is not followed.
 * Each target once, in the page's order; none for a query without an `_include` of the plan.
 * @param body the page's bytes (where the entries' offsets point unless `entries.source` is set)
 */
export function missingIncludes(include: string | undefined, entries: PageEntries, body: Buffer, baseUrl: string): IncludeTarget[] {
  const paths = include !== undefined ? INCLUDE_PATHS[include] : undefined;
  if (include === undefined || paths === undefined) return [];
  const held = new Set(entries.entries.map((e) => `${e.type}/${e.id}`));
  const names = paths.elements.map((element) => Buffer.from(`"${element[element.length - 1] ?? ''}"`));
  const missing = new Map<string, IncludeTarget>();
  for (const entry of entries.entries) {
    if (entry.type !== paths.matchType || isIncluded(entry, paths.matchType)) continue;
    const bytes = (entries.source ?? body).subarray(entry.offset, entry.offset + entry.length);
    // Most matches name no such element (a MedicationRequest coded inline): not parsed at all.
    if (entry.resource === undefined && !names.some((name) => bytes.includes(name))) continue;
    let resource: unknown = entry.resource;
    try {
      resource ??= JSON.parse(bytes.toString('utf8'));
    } catch {
      continue; // not JSON: the page's commit refuses it as malformed
    }
    for (const reference of paths.elements.flatMap((element) => referencesAt(resource, element))) {
      const parsed = parseReference(reference, baseUrl);
      if (parsed.kind !== 'literal' || parsed.resourceType !== paths.targetType) continue;
      const key = `${parsed.resourceType}/${parsed.id}`;
      if (!held.has(key) && !missing.has(key)) missing.set(key, { include, type: parsed.resourceType, id: parsed.id });
    }
  }
  return [...missing.values()];
}
