/**
 * The age of majority that applies to a patient: the override of the patient's US state in the
 * rule data (`adultAgeByState`: 19 in Alabama and Nebraska, 21 in Mississippi), else `adultAge`.
 * @packageDocumentation
 */
import type { EligibilityRules } from './eligibility-rules';
import { isUnitedStates } from './us-places';

/** The address fields the age of majority depends on. */
export interface MajorityAddress {
  readonly country: string;
  /** Absent for an address outside the United States. */
  readonly state?: string | undefined;
}

/**
 * Age from which the patient living at `address` is an adult. Only a US address's state is looked
 * up (a state written abroad, free text, never matches a USPS code by chance).
 */
export function adultAgeFor(rules: Pick<EligibilityRules, 'adultAge' | 'adultAgeByState'>, address: MajorityAddress): number {
  if (!isUnitedStates(address.country) || address.state === undefined) return rules.adultAge;
  return rules.adultAgeByState[address.state.trim().toUpperCase()] ?? rules.adultAge;
}
