/**
 * A specialist as FHIR R4: a Practitioner identified by NPI, and a PractitionerRole carrying the
 * specialties (NUCC taxonomy, as US Core PractitionerRole.specialty does).
 * @packageDocumentation
 */
import type { Practitioner, PractitionerRole } from 'fhir/r4';
import type { SpecialistRecord } from './specialist-repository';
import type { SpecialtyMatching } from './specialty-matching';

/** FHIR identifier system of National Provider Identifiers. */
export const NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi';

/** The specialist's Practitioner resource. */
export function practitionerOf(s: SpecialistRecord): Practitioner {
  return {
    resourceType: 'Practitioner',
    id: s.id,
    identifier: [{ system: NPI_SYSTEM, value: s.npi }],
    active: s.active,
    name: [{ use: 'official', family: s.name.family, given: s.name.given, prefix: s.name.prefix, suffix: s.name.suffix }],
  };
}

/** The specialist's PractitionerRole with its specialties. */
export function practitionerRoleOf(s: SpecialistRecord, matching: SpecialtyMatching): PractitionerRole {
  return {
    resourceType: 'PractitionerRole',
    id: `${s.id}-role`,
    active: s.active,
    practitioner: { reference: `Practitioner/${s.id}` },
    specialty: s.specialties.map((code) => ({
      coding: [{ system: matching.specialtySystem, code, display: matching.specialties.find((x) => x.code === code)?.display }],
    })),
  };
}

/** `Dr. Ada Lovelace MD`: the name as printed on timelines and documents. */
export function displayName(s: Pick<SpecialistRecord, 'name'>): string {
  return [...(s.name.prefix ?? []), ...s.name.given, s.name.family, ...(s.name.suffix ?? [])].join(' ');
}
