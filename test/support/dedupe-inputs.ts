/**
 * Inputs for de-duplication tests: resources as normalization hands them to dedupe, and every input
 * order (a rule must not depend on the order records arrive in).
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { NormalizedResource } from '../../src/normalize/types';

let counter = 0;

/** A NormalizedResource of `sourceId` with a fresh uuid (unique within the test file). */
export function nr<T extends FhirResource>(sourceId: string, resource: T): NormalizedResource & { resource: T } {
  const uuid = `00000000-0000-5000-8000-${String(++counter).padStart(12, '0')}`;
  return { key: `${sourceId}|${resource.resourceType}|${uuid}`, fullUrl: `urn:uuid:${uuid}`, resource: { ...resource, id: uuid }, sourceId, origin: 'local-ehr' };
}

/** Every ordering of `items`. */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}
