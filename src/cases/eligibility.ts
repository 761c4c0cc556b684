/**
 * Eligibility of an intake, decided by the rule data in `mappings/eligibility.json`.
 *
 * Every reason that applies is reported (urgent first) so the case manager can
 * tell the family everything at once:
 * 1. urgent — send to 911 / emergency care;
 * 2. relationship — unknown code; or a requester who cannot consent for a minor;
 *    or, for a patient at or over the age of majority of their state on the request
 *    date (`adultAgeByState`, else `adultAge`: `adult-age.ts`), a requester without
 *    legal authority for an adult (guardian or power of attorney);
 * 3. `attestsLegalAuthority` is not true;
 * 4. address — outside the United States; in an excluded state; or in the
 *    program's local area (those families book a regular clinic visit).
 *
 * Relationship codes: HL7 v3 RoleCode, {@link https://terminology.hl7.org/CodeSystem-v3-RoleCode.html}.
 * @packageDocumentation
 */
import {
  adultConsentRefusal,
  excludedStateRefusal,
  localAreaRefusal,
  minorConsentRefusal,
  notAttestedRefusal,
  outsideUsRefusal,
  unknownRelationshipRefusal,
  urgentRefusal,
  type ReasonCode,
  type Refusal,
} from './eligibility-messages';
import { adultAgeFor } from './adult-age';
import { patientTimeZone } from './state-time-zone';
import type { EligibilityRules } from './eligibility-rules';
import { findRelationship } from './relationship-lookup';
import type { Intake } from './intake-schema';
import { classifyAddress } from './service-area';
import { localDateOf, wholeYearsBetween } from './zoned-date';

/** The eligibility decision stored on the case. */
export interface EligibilityResult {
  eligible: boolean;
  /** Sentences to read to the family, in order (urgent first). Empty when eligible. */
  reasons: string[];
  /** Stable codes, one per reason, same order. */
  reasonCodes: ReasonCode[];
}

/** Options for {@link evaluateEligibility}. */
export interface EligibilityOptions {
  /** Zone of the request date used for the patient's age; defaults to the patient's state's (`patientTimeZone`), else `rules.timeZone`. */
  timeZone?: string;
}

/** The fields eligibility reads; any {@link Intake} fits. */
export type EligibilityInput = Pick<Intake, 'patient' | 'requester' | 'urgent'>;

/** The patient's age in whole years on the request date in `timeZone`. */
export function patientAgeOn(birthDate: string, asOf: Date, timeZone: string): number {
  return wholeYearsBetween(birthDate, localDateOf(asOf, timeZone));
}

/** `age`: the patient's age on the request date; `adultAge`: the age of majority where they live. */
function relationshipRefusal(intake: EligibilityInput, rules: EligibilityRules, age: number, adultAge: number, patient: string): Refusal | undefined {
  const rule = findRelationship(rules, intake.requester.relationship);
  if (!rule) return unknownRelationshipRefusal(intake.requester.relationship, patient);
  if (age >= adultAge) return rule.canConsentForAdult ? undefined : adultConsentRefusal(rule, patient, adultAge);
  return rule.canConsentForMinor ? undefined : minorConsentRefusal(rule, patient, adultAge);
}

function addressRefusal(intake: EligibilityInput, rules: EligibilityRules, patient: string): Refusal | undefined {
  const address = intake.patient.address;
  const standing = classifyAddress(rules, address);
  switch (standing.kind) {
    case 'outside-us':
      return outsideUsRefusal(standing.country);
    case 'excluded-state':
      return excludedStateRefusal(standing.excluded, rules.defaultExclusionReason);
    case 'local':
      return localAreaRefusal(
        patient,
        standing.region,
        standing.matchedBy === 'county' ? `${standing.county ?? ''}, ${standing.region.state}` : `ZIP code ${address.postalCode}`,
      );
    case 'served':
      return undefined;
  }
}

/**
 * Decides whether the program can open a case for `intake` on `asOf`.
 * @param intake - a parsed intake
 * @param rules - validated rule data (`loadEligibilityRules`)
 * @param asOf - the request date (the patient's age is taken on its calendar date where the patient
 *   lives: the westernmost zone of the patient's US state, else the program's zone)
 */
export function evaluateEligibility(
  intake: EligibilityInput,
  rules: EligibilityRules,
  asOf: Date,
  options: EligibilityOptions = {},
): EligibilityResult {
  const patient = intake.patient.name.given[0] ?? 'the patient';
  // Where the patient lives, else the program's zone (state-time-zone.ts).
  const age = patientAgeOn(intake.patient.birthDate, asOf, options.timeZone ?? patientTimeZone(intake.patient.address) ?? rules.timeZone);
  const refusals: Refusal[] = [];
  const add = (refusal: Refusal | undefined): void => {
    if (refusal) refusals.push(refusal);
  };

  if (intake.urgent) add(urgentRefusal(patient));
  add(relationshipRefusal(intake, rules, age, adultAgeFor(rules, intake.patient.address), patient));
  if (intake.requester.attestsLegalAuthority !== true) add(notAttestedRefusal(patient));
  add(addressRefusal(intake, rules, patient));

  return {
    eligible: refusals.length === 0,
    reasons: refusals.map((r) => r.message),
    reasonCodes: refusals.map((r) => r.code),
  };
}
