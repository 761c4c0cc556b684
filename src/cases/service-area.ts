/**
 * Where a patient lives, relative to the program: outside the United States, in
 * an excluded state, in the program's local area, or eligible.
 * @packageDocumentation
 */
import type { EligibilityRules, ExcludedState, LocalRegion } from './eligibility-rules';
import { isUnitedStates } from './us-places';

/** The address fields this check reads (a subset of the intake address). */
export interface ServiceAreaAddress {
  /** USPS code for a US address (the intake requires it there); absent or free text elsewhere. */
  readonly state?: string | undefined;
  /** A US ZIP code for a US address (the intake requires it there); absent or free text elsewhere. */
  readonly postalCode?: string | undefined;
  readonly country: string;
  readonly district?: string | undefined;
}

/** Outcome of {@link classifyAddress}. */
export type AddressStanding =
  | { readonly kind: 'outside-us'; readonly country: string }
  | { readonly kind: 'excluded-state'; readonly excluded: ExcludedState }
  | { readonly kind: 'local'; readonly region: LocalRegion; readonly matchedBy: 'county' | 'zip'; readonly county?: string }
  | { readonly kind: 'served' };

/**
 * Normalizes a county name for comparison: case, spacing, a trailing "County"
 * (or "Co."), and "St."/"Saint" are ignored. `"  kenton county "` → `"kenton"`.
 */
export function normalizeCounty(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/\s+(county|co\.?)$/, '')
    .replace(/^st\.?\s+/, 'saint ');
}

function inZipRange(postalCode: string | undefined, from: string, to: string): boolean {
  const digits = (postalCode ?? '').replace(/\D/g, '');
  if (digits.length < from.length) return false;
  const prefix = digits.slice(0, from.length);
  return prefix >= from && prefix <= to;
}

/**
 * Finds the local region an address lies in: the county (`district`) must be listed for the
 * address's state, or the ZIP code must start with a listed prefix.
 */
export function findLocalRegion(
  rules: EligibilityRules,
  address: ServiceAreaAddress,
): { region: LocalRegion; matchedBy: 'county' | 'zip' } | undefined {
  const state = (address.state ?? '').toUpperCase();
  const county = address.district ? normalizeCounty(address.district) : undefined;
  if (county) {
    for (const region of rules.localArea.regions) {
      if (region.state === state && region.counties.some((c) => normalizeCounty(c) === county)) {
        return { region, matchedBy: 'county' };
      }
    }
  }
  for (const region of rules.localArea.regions) {
    if (region.zipPrefixes.some((r) => inZipRange(address.postalCode, r.from, r.to))) {
      return { region, matchedBy: 'zip' };
    }
  }
  return undefined;
}

/** Classifies a patient's home address against the program's service area. */
export function classifyAddress(rules: EligibilityRules, address: ServiceAreaAddress): AddressStanding {
  if (!isUnitedStates(address.country)) return { kind: 'outside-us', country: address.country };
  const state = (address.state ?? '').toUpperCase();
  const excluded = rules.excludedStates.find((s) => s.state === state);
  if (excluded) return { kind: 'excluded-state', excluded };
  const local = findLocalRegion(rules, address);
  if (local) {
    return local.matchedBy === 'county' && address.district
      ? { kind: 'local', region: local.region, matchedBy: 'county', county: address.district }
      : { kind: 'local', region: local.region, matchedBy: local.matchedBy };
  }
  return { kind: 'served' };
}
