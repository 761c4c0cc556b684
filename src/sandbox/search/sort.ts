/**
 * `_sort` for in-memory results.
 *
 * Medplum's MemoryRepository applies sort rules one after the other with separate sorts, which makes
 * the *last* rule the primary key; FHIR says the first one is. Here the first rule is primary, the
 * values are computed once per resource (not once per comparison), and values are compared like
 * Medplum does (the JSON of the FHIRPath result) but by code unit, not by locale, so the order is the
 * same on every machine.
 *
 * @see https://hl7.org/fhir/R4/search.html#sort
 */
import type { SortRule } from '@medplum/core';
import { evalFhirPath } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { getSearchParameter } from '../fhir-definitions';

/** Returns a new array, sorted by `rules` (stable: ties keep their current order). */
export function sortResources<T extends Resource>(resources: readonly T[], resourceType: string, rules: readonly SortRule[]): T[] {
  const keyFunctions = rules
    .map((rule) => ({ rule, keyOf: sortKeyFunction(resourceType, rule.code) }))
    .filter((entry): entry is { rule: SortRule; keyOf: (resource: Resource) => string } => entry.keyOf !== undefined);
  if (keyFunctions.length === 0) {
    return [...resources];
  }
  const decorated = resources.map((resource, position) => ({
    resource,
    position,
    keys: keyFunctions.map(({ keyOf }) => keyOf(resource)),
  }));
  decorated.sort((a, b) => {
    for (let i = 0; i < keyFunctions.length; i++) {
      const order = compareKeys(a.keys[i], b.keys[i]);
      if (order !== 0) {
        return keyFunctions[i].rule.descending ? -order : order;
      }
    }
    return a.position - b.position;
  });
  return decorated.map((entry) => entry.resource);
}

function compareKeys(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

function sortKeyFunction(resourceType: string, code: string): ((resource: Resource) => string) | undefined {
  if (code === '_id') {
    return (resource) => resource.id ?? '';
  }
  if (code === '_lastUpdated') {
    return (resource) => resource.meta?.lastUpdated ?? '';
  }
  const expression = getSearchParameter(resourceType, code)?.expression;
  if (!expression) {
    return undefined;
  }
  return (resource) => JSON.stringify(evalFhirPath(expression, resource));
}
