/**
 * Normalizes reference search values the way a FHIR server must read them.
 *
 * FHIR lets a client search a reference by bare id (`patient=123`), by type and id
 * (`patient=Patient/123`), with a type modifier (`subject:Patient=123`) or by absolute URL
 * (`patient=http://server/fhir/Patient/123`). Medplum's in-memory matcher compares whole reference
 * strings, so `patient=123` matches nothing there. We rewrite every form to `Type/id`; a bare id
 * on a parameter with several target types becomes an OR over all of them
 * (`subject=123` → `Patient/123,Group/123,Device/123,Location/123`).
 *
 * @see https://hl7.org/fhir/R4/search.html#reference
 */
import { splitSearchOnComma } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';

/**
 * Rewrites one reference search value (possibly comma-separated).
 * @param searchParam - The reference SearchParameter being searched.
 * @param value - The raw value from the query string.
 * @param typeModifier - The `:Type` modifier, if the parameter had one.
 * @param baseUrl - This server's base URL, so absolute references to it become relative.
 */
export function normalizeReferenceSearchValue(
  searchParam: SearchParameter,
  value: string,
  typeModifier?: string,
  baseUrl?: string
): string {
  const normalized: string[] = [];
  for (const part of splitSearchOnComma(value)) {
    for (const reference of normalizeOne(searchParam, part, typeModifier, baseUrl)) {
      if (!normalized.includes(reference)) {
        normalized.push(reference);
      }
    }
  }
  return normalized.join(',');
}

function normalizeOne(searchParam: SearchParameter, value: string, typeModifier?: string, baseUrl?: string): string[] {
  let reference = value.trim();
  if (baseUrl && reference.startsWith(baseUrl + '/')) {
    reference = reference.slice(baseUrl.length + 1);
  }
  if (reference === '' || reference.includes('/') || reference.includes(':')) {
    return [reference];
  }
  if (typeModifier) {
    return [`${typeModifier}/${reference}`];
  }
  const targets = searchParam.target ?? [];
  if (targets.length === 0) {
    return [reference];
  }
  return targets.map((target) => `${target}/${reference}`);
}

/** True for a `:modifier` that names a resource type (`subject:Patient`), per FHIR search. */
export function isTypeModifier(modifier: string): boolean {
  return /^[A-Z][A-Za-z]+$/.test(modifier);
}
