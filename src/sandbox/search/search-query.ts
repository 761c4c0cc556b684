/**
 * Reads a search query string into a Medplum `SearchRequest` plus the parts the sandbox handles
 * itself (paging, includes), and a canonical form of the query used for caching and links.
 *
 * Rules (https://hl7.org/fhir/R4/search.html):
 * - reference values are normalized (`patient=123` → `patient=Patient/123`; `subject:Patient=1`);
 * - unknown parameters are ignored and left out of the self link, unless the client sent
 *   `Prefer: handling=strict` (then 400), as https://hl7.org/fhir/R4/search.html#errors says;
 * - parameter types Medplum's in-memory matcher cannot evaluate (number, quantity, composite,
 *   special), chained parameters and `_has` are refused with 400 instead of silently matching nothing;
 * - `_summary=count` and `_count=0` return only the total; `_elements`, other `_summary` values,
 *   `_format`, `_pretty` and `_total` are accepted and ignored (full resources are returned).
 */
import type { SearchRequest } from '@medplum/core';
import { OperationOutcomeError, badRequest, parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { getSearchParameter } from '../fhir-definitions';
import type { IncludeRequest } from './includes';
import { isTypeModifier, normalizeReferenceSearchValue } from './reference-values';

export interface ParsedSearch {
  /** Filters and sort rules; no count or offset (paging is done on the snapshot). */
  readonly searchRequest: SearchRequest;
  /** The normalized query without paging parameters, sorted, URL-encoded. */
  readonly canonicalQuery: string;
  readonly count: number | undefined;
  readonly offset: number;
  /** `_summary=count`: total only. */
  readonly totalOnly: boolean;
  readonly includes: IncludeRequest | undefined;
}

/** Paging parameters, recognized on every search and `$everything`. */
export const PAGING_PARAMETERS = new Set(['_count', '_offset', '_getpages', '_getpagesoffset', '_bundletype']);
/** Result parameters that change only the form of the answer, recognized on every search and not evaluated. */
export const IGNORED_PARAMETERS = new Set(['_format', '_pretty', '_elements', '_total', '_contained', '_containedType', '_summary']);
const SUPPORTED_TYPES = new Set(['reference', 'token', 'string', 'uri', 'date']);
/** Result parameters that order the matches or add resources to them, kept in the normalized query. */
export const ORDER_AND_INCLUDE_PARAMETERS = new Set(['_sort', '_include', '_revinclude']);
/** Kept in the normalized query as given: {@link ORDER_AND_INCLUDE_PARAMETERS}, and `_id` and `_lastUpdated`, which hold for every type. */
const RESULT_PARAMETERS = new Set([...ORDER_AND_INCLUDE_PARAMETERS, '_id', '_lastUpdated']);

export interface SearchQueryOptions {
  /** This server's base URL (absolute references to it are made relative). */
  readonly baseUrl: string;
  /** `Prefer: handling=strict`: unknown parameters are an error. */
  readonly strict: boolean;
}

export function parseSearchQuery(resourceType: string, params: URLSearchParams, options: SearchQueryOptions): ParsedSearch {
  const pairs: [string, string][] = [];
  for (const [key, value] of params) {
    if (PAGING_PARAMETERS.has(key) || IGNORED_PARAMETERS.has(key)) {
      continue;
    }
    const normalized = normalizeParameter(resourceType, key, value, options);
    if (normalized) {
      pairs.push(normalized);
    }
  }
  pairs.sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1));
  const searchRequest = toSearchRequest(resourceType, pairs);
  const totalOnly = params.get('_summary') === 'count';
  const includes =
    searchRequest.include || searchRequest.revInclude
      ? { include: searchRequest.include ?? [], revInclude: searchRequest.revInclude ?? [] }
      : undefined;
  return {
    searchRequest: { ...searchRequest, count: undefined, offset: undefined, include: undefined, revInclude: undefined },
    canonicalQuery: new URLSearchParams(pairs).toString(),
    count: parseNonNegativeInteger(params, '_count'),
    offset: parseNonNegativeInteger(params, '_offset') ?? parseNonNegativeInteger(params, '_getpagesoffset') ?? 0,
    totalOnly,
    includes,
  };
}

/** Reads an optional non-negative integer parameter; 400 if it is anything else. */
export function parseNonNegativeInteger(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') {
    return undefined;
  }
  if (!/^\d{1,9}$/.test(raw)) {
    throw new OperationOutcomeError(badRequest(`${name} must be a non-negative integer`, name));
  }
  return Number(raw);
}

function normalizeParameter(resourceType: string, key: string, value: string, options: SearchQueryOptions): [string, string] | undefined {
  const [code, modifier = ''] = key.split(':', 2);
  if (RESULT_PARAMETERS.has(code)) {
    return [key, value];
  }
  if (code === '_has' || code.includes('.')) {
    throw new OperationOutcomeError(badRequest(`Chained search and _has are not supported by this sandbox: ${key}`, key));
  }
  const searchParam = getSearchParameter(resourceType, code);
  if (!searchParam) {
    if (options.strict) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter ${code} for ${resourceType}`, key));
    }
    return undefined;
  }
  if (!SUPPORTED_TYPES.has(searchParam.type as string)) {
    throw new OperationOutcomeError(
      badRequest(`Search parameter ${code} has type ${searchParam.type}, which this sandbox cannot evaluate`, key)
    );
  }
  if (searchParam.type === 'reference' && (modifier === '' || isTypeModifier(modifier))) {
    return [code, normalizeReferenceSearchValue(searchParam, value, modifier || undefined, options.baseUrl)];
  }
  return [key, value];
}

function toSearchRequest(resourceType: string, pairs: readonly [string, string][]): SearchRequest {
  const query: Record<string, string[]> = {};
  for (const [key, value] of pairs) {
    (query[key] ??= []).push(value);
  }
  try {
    return parseSearchRequest(resourceType as Resource['resourceType'], query);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      throw err;
    }
    throw new OperationOutcomeError(badRequest(err instanceof Error ? err.message : String(err)));
  }
}
