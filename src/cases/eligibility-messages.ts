/**
 * The sentences a case manager reads to a family when a request is refused, and
 * their stable reason codes. One function per reason.
 * @packageDocumentation
 */
import type { ExcludedState, LocalRegion, RelationshipRule } from './eligibility-rules';

/** Stable, machine-readable refusal reasons, in the order they are reported. */
export const REASON_CODES = [
  'urgent',
  'relationship-unknown',
  'relationship-cannot-consent-for-minor',
  'adult-patient-needs-guardian-or-poa',
  'legal-authority-not-attested',
  'outside-united-states',
  'state-excluded',
  'local-area',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

/** A refusal: its code and the sentence to read. */
export interface Refusal {
  readonly code: ReasonCode;
  readonly message: string;
}

/** Replaces `{patient}` and `{display}` in a data-provided template. */
export function fillTemplate(template: string, values: { patient: string; display?: string }): string {
  return template.replace(/\{(patient|display)\}/g, (_m, key: 'patient' | 'display') => values[key] ?? '');
}

function requesterPhrase(rule: RelationshipRule, patient: string): string {
  return fillTemplate(rule.requesterPhrase ?? "{patient}'s {display}", { patient, display: rule.display });
}

function withHint(sentence: string, rule: RelationshipRule, patient: string): string {
  return rule.hint ? `${sentence} ${fillTemplate(rule.hint, { patient })}` : sentence;
}

export function urgentRefusal(patient: string): Refusal {
  return {
    code: 'urgent',
    message:
      `You told us this request is urgent. An online second opinion takes several business days, ` +
      `so if ${patient} needs care now, call 911 or go to your nearest emergency department, ` +
      `and for an urgent medical question call ${patient}'s own doctor.`,
  };
}

export function unknownRelationshipRefusal(code: string, patient: string): Refusal {
  return {
    code: 'relationship-unknown',
    message:
      `We do not recognize the relationship code "${code}". Please choose your relationship to ${patient} ` +
      `from the list, for example MTH (mother), FTH (father) or GUARD (legal guardian).`,
  };
}

/** `adultAge`: the age of majority where the patient lives (`adult-age.ts`), named in the sentence. */
export function minorConsentRefusal(rule: RelationshipRule, patient: string, adultAge: number): Refusal {
  return {
    code: 'relationship-cannot-consent-for-minor',
    message: withHint(
      `A parent or legal guardian must ask for a second opinion for a child under ${adultAge}, ` +
        `so we cannot accept this request from ${requesterPhrase(rule, patient)}.`,
      rule,
      patient,
    ),
  };
}

/** `adultAge`: the age of majority where the patient lives (`adult-age.ts`), named in the sentence. */
export function adultConsentRefusal(rule: RelationshipRule, patient: string, adultAge: number): Refusal {
  return {
    code: 'adult-patient-needs-guardian-or-poa',
    message:
      `${patient} is ${adultAge} or older, so only ${patient} (choose ONESELF), a legal guardian or a person ` +
      `holding power of attorney for ${patient}'s health care can ask for this second opinion, and we cannot ` +
      `accept it from ${requesterPhrase(rule, patient)}. If a court has appointed you as ${patient}'s guardian, ` +
      `choose GUARD (guardian); if you hold a health care power of attorney for ${patient}, choose HPOWATT ` +
      `(healthcare power of attorney).`,
  };
}

export function notAttestedRefusal(patient: string): Refusal {
  return {
    code: 'legal-authority-not-attested',
    message:
      `You must confirm that you have the legal authority to make health care decisions for ${patient} ` +
      `before we can open this case.`,
  };
}

export function outsideUsRefusal(country: string): Refusal {
  return {
    code: 'outside-united-states',
    message:
      `Our Online Second Opinion program can only accept requests for patients who live in the United States, ` +
      `and the address you gave is in ${country}.`,
  };
}

export function excludedStateRefusal(excluded: ExcludedState, defaultReason: string): Refusal {
  return {
    code: 'state-excluded',
    message: `We cannot accept requests for patients who live in ${excluded.name}, because ${excluded.reason ?? defaultReason}.`,
  };
}

export function localAreaRefusal(patient: string, region: LocalRegion, where: string): Refusal {
  return {
    code: 'local-area',
    message:
      `Our Online Second Opinion program serves families who live outside our local area. ` +
      `Because ${patient} lives in ${region.name} (${where}), please book a regular clinic visit ` +
      `with our specialists instead.`,
  };
}
