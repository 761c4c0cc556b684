/**
 * Resolves conditional references in a transaction or batch Bundle before it is processed:
 * `"reference": "Organization?identifier=https://github.com/synthetichealth/synthea|abc"` becomes
 * `"Organization/<id>"` when exactly one resource matches. Medplum's batch processor does not do this
 * (its server repository does, MemoryRepository does not); Synthea's newer exports rely on it.
 *
 * Resolution is against the server's state before the Bundle (a reference to a resource created in
 * the same Bundle by `ifNoneExist` is not resolved; load reference data first, as Synthea expects).
 *
 * @see https://hl7.org/fhir/R4/http.html#trules ("Conditional References")
 */
import { parseSearchRequest } from '@medplum/core';
import type { Bundle } from '@medplum/fhirtypes';
import type { SandboxRepository } from '../repository/sandbox-repository';

const CONDITIONAL_REFERENCE = /^[A-Z][A-Za-z]+\?.+/;

export interface UnresolvedReference {
  readonly entryIndex: number;
  readonly reference: string;
  readonly matches: number;
}

/**
 * Rewrites, in place, every conditional reference of every entry's resource that matches exactly one
 * resource. Returns those that matched none or several (the caller fails the entry or transaction).
 */
export function resolveConditionalReferences(bundle: Bundle, repo: SandboxRepository): UnresolvedReference[] {
  const resolved = new Map<string, string | number>();
  const unresolved: UnresolvedReference[] = [];
  const resolve = (reference: string): string | number => {
    let result = resolved.get(reference);
    if (result === undefined) {
      const matches = repo.searchEngine.execute(parseSearchRequest(reference));
      result = matches.length === 1 ? `${matches[0].resourceType}/${matches[0].id}` : matches.length;
      resolved.set(reference, result);
    }
    return result;
  };
  (bundle.entry ?? []).forEach((entry, entryIndex) => {
    if (entry.resource) {
      rewrite(entry.resource, (reference) => {
        const result = resolve(reference);
        if (typeof result === 'number') {
          unresolved.push({ entryIndex, reference, matches: result });
          return undefined;
        }
        return result;
      });
    }
  });
  return unresolved;
}

function rewrite(value: unknown, resolve: (reference: string) => string | undefined): void {
  if (Array.isArray(value)) {
    value.forEach((item) => rewrite(item, resolve));
    return;
  }
  if (value === null || typeof value !== 'object') {
    return;
  }
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(record)) {
    if (key === 'reference' && typeof child === 'string' && CONDITIONAL_REFERENCE.test(child)) {
      const replacement = resolve(child);
      if (replacement) {
        record[key] = replacement;
      }
    } else if (child !== null && typeof child === 'object') {
      rewrite(child, resolve);
    }
  }
}
