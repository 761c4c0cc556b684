/**
 * Turns the elements a search parameter selects into the values the search index is keyed by.
 *
 * References follow `convertToSearchableReferences` in `@medplum/core` exactly (so an index hit is
 * a match). Tokens are a deliberate superset (every code, value, display and text, lower-cased): an
 * index hit for a token only makes a resource a candidate, which Medplum's `matchesSearchRequest`
 * then confirms.
 *
 * @see https://hl7.org/fhir/R4/search.html#reference
 * @see https://hl7.org/fhir/R4/search.html#token
 */
import { convertToSearchableReferences, convertToSearchableTokens, evalFhirPathTyped, toTypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { PathExtractor } from './path-extractor';

export type IndexedParameterKind = 'reference' | 'token';

/** Reference strings of the selected elements, as Medplum's matcher compares them. */
export function referenceValuesOf(elements: readonly unknown[]): string[] {
  const values = new Set<string>();
  for (const element of elements) {
    if (typeof element === 'string') {
      values.add(element);
      continue;
    }
    if (element === null || typeof element !== 'object') {
      continue;
    }
    const candidate = element as { reference?: unknown; resourceType?: unknown; id?: unknown; identifier?: unknown };
    if (typeof candidate.reference === 'string') {
      values.add(candidate.reference);
    } else if (typeof candidate.resourceType === 'string' && typeof candidate.id === 'string') {
      values.add(`${candidate.resourceType}/${candidate.id}`);
    } else if (candidate.identifier !== null && typeof candidate.identifier === 'object') {
      const identifier = candidate.identifier as { system?: unknown; value?: unknown };
      values.add(`identifier:${String(identifier.system)}|${String(identifier.value)}`);
    }
  }
  return [...values];
}

/** Every string a token search could match on, lower-cased (a superset; see the module comment). */
export function tokenValuesOf(elements: readonly unknown[]): string[] {
  const values = new Set<string>();
  const visit = (value: unknown, depth: number): void => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      values.add(String(value).toLowerCase());
    } else if (Array.isArray(value)) {
      value.forEach((item) => visit(item, depth));
    } else if (value !== null && typeof value === 'object' && depth < 3) {
      const record = value as Record<string, unknown>;
      for (const key of ['code', 'value', 'display', 'text', 'coding', 'type']) {
        if (key in record) {
          visit(record[key], depth + 1);
        }
      }
    }
  };
  elements.forEach((element) => visit(element, 0));
  return [...values];
}

/** Search values through Medplum's own FHIRPath engine, for expressions the fast path cannot compile. */
export function medplumSearchValues(kind: IndexedParameterKind, expression: string, resource: Resource): string[] {
  const typedValues = evalFhirPathTyped(expression, [toTypedValue(resource)]);
  if (kind === 'reference') {
    return convertToSearchableReferences(typedValues);
  }
  const values = new Set<string>();
  for (const token of convertToSearchableTokens(typedValues)) {
    if (token.value) {
      values.add(token.value.toLowerCase());
    }
  }
  return [...values];
}

/** Builds the function that yields a resource's index values for one parameter. */
export function searchValueFunction(
  kind: IndexedParameterKind,
  expression: string,
  extractor: PathExtractor | undefined
): (resource: Resource) => string[] {
  if (!extractor) {
    return (resource) => medplumSearchValues(kind, expression, resource);
  }
  return kind === 'reference'
    ? (resource) => referenceValuesOf(extractor(resource))
    : (resource) => tokenValuesOf(extractor(resource));
}
