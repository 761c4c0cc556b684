/**
 * A server that declares, per resource type, the only search parameters it takes
 * (CapabilityStatement.rest.resource.searchParam, https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam)
 * and refuses any other with 400, as a strict server may (https://hl7.org/fhir/R4/search.html#errors):
 * the sandbox's `searchParams` option. Result and paging parameters (`_count`, `_sort`, `_include`, …)
 * are not search parameters and are always taken.
 */
import { IGNORED_PARAMETERS, ORDER_AND_INCLUDE_PARAMETERS, PAGING_PARAMETERS } from './search-query';

/** Per resource type, the search parameters declared (types not named: every one the sandbox evaluates). */
export type DeclaredSearchParameters = Readonly<Record<string, readonly string[]>>;

/**
 * Parameters that are not search parameters (https://hl7.org/fhir/R4/search.html#Summary: result parameters), always taken.
 * `_id` and `_lastUpdated` are search parameters of every type: a server declares them or refuses them.
 */
const ALWAYS_TAKEN: ReadonlySet<string> = new Set([...PAGING_PARAMETERS, ...IGNORED_PARAMETERS, ...ORDER_AND_INCLUDE_PARAMETERS]);

/** The first parameter of a search of `resourceType` that the server does not declare (its name, modifier aside); undefined when all are. */
export function undeclaredParameter(declared: DeclaredSearchParameters | undefined, resourceType: string, params: URLSearchParams): string | undefined {
  const names = declared?.[resourceType];
  if (names === undefined) return undefined;
  for (const key of params.keys()) {
    const name = key.split(':', 1)[0] ?? key;
    if (!ALWAYS_TAKEN.has(name) && !names.includes(name)) return name;
  }
  return undefined;
}
