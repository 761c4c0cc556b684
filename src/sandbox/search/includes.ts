/**
 * `_include` and `_revinclude` (one level; `:iterate` is treated as one level too), which
 * Medplum's MemoryRepository ignores. Resolved per page, for the page's matches only, and returned
 * with `search.mode = include`.
 *
 * @see https://hl7.org/fhir/R4/search.html#include
 */
import type { IncludeTarget } from '@medplum/core';
import { Operator } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { getSearchParameter } from '../fhir-definitions';
import type { SandboxRepository } from '../repository/sandbox-repository';
import { compilePathExtractor } from './path-extractor';
import { searchValueFunction } from './search-values';

export interface IncludeRequest {
  readonly include: readonly IncludeTarget[];
  readonly revInclude: readonly IncludeTarget[];
}

/** Resources to add to a page of `matches`, without duplicates and without the matches themselves. */
export function resolveIncludes(matches: readonly Resource[], request: IncludeRequest, repo: SandboxRepository): Resource[] {
  const seen = new Set(matches.map(keyOf));
  const included: Resource[] = [];
  const add = (resource: Resource | undefined): void => {
    if (resource && !seen.has(keyOf(resource))) {
      seen.add(keyOf(resource));
      included.push(resource);
    }
  };
  for (const target of request.include) {
    const referencesOf = referenceFunction(target.resourceType, target.searchParam);
    if (!referencesOf) {
      continue;
    }
    for (const match of matches) {
      if (match.resourceType !== target.resourceType) {
        continue;
      }
      for (const reference of referencesOf(match)) {
        const [type, id, extra] = reference.split('/');
        if (id && extra === undefined && (!target.targetType || target.targetType === type)) {
          add(repo.getStored(type, id));
        }
      }
    }
  }
  for (const target of request.revInclude) {
    if (getSearchParameter(target.resourceType, target.searchParam)?.type !== 'reference') {
      continue;
    }
    const references = matches.map(keyOf).filter((key) => !target.targetType || key.startsWith(target.targetType + '/'));
    if (references.length === 0) {
      continue;
    }
    const referring = repo.searchEngine.execute({
      resourceType: target.resourceType as Resource['resourceType'],
      filters: [{ code: target.searchParam, operator: Operator.EQUALS, value: references.join(',') }],
    });
    referring.forEach(add);
  }
  return included;
}

function referenceFunction(resourceType: string, code: string): ((resource: Resource) => string[]) | undefined {
  const searchParam = getSearchParameter(resourceType, code);
  if (searchParam?.type !== 'reference' || !searchParam.expression) {
    return undefined;
  }
  return searchValueFunction('reference', searchParam.expression, compilePathExtractor(resourceType, searchParam.expression));
}

function keyOf(resource: Resource): string {
  return `${resource.resourceType}/${resource.id}`;
}
