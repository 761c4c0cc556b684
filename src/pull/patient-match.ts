import type { Bundle, Patient } from 'fhir/r4';
import type { Intake } from '../cases/intake-schema';
import type { PatientCandidate } from './source-repository';

/** Patients that a search returned as matches (not `_include`d or OperationOutcome entries). */
export function matchedPatients(bundle: Bundle): Patient[] {
  return (bundle.entry ?? [])
    .filter((e) => e.resource?.resourceType === 'Patient' && (e.search?.mode === undefined || e.search.mode === 'match'))
    .map((e) => e.resource as Patient);
}

/** What a case manager needs to tell candidates apart (shown only to authorised roles, never logged). */
export function candidateOf(patient: Patient): PatientCandidate {
  const name = patient.name?.[0];
  const display = name ? [...(name.given ?? []), name.family].filter(Boolean).join(' ') : undefined;
  return {
    id: patient.id ?? '',
    ...(display ? { name: display } : {}),
    ...(patient.birthDate ? { birthDate: patient.birthDate } : {}),
    ...(patient.gender ? { gender: patient.gender } : {}),
    identifiers: (patient.identifier ?? []).map((i) => ({ system: i.system, value: i.value })),
  };
}

/** Search parameters for demographic matching: family, first given name, exact birth date. */
export function demographicQuery(intake: Intake): Record<string, string> {
  return {
    family: intake.patient.name.family,
    given: intake.patient.name.given[0] ?? '',
    birthdate: `eq${intake.patient.birthDate}`,
    _count: '20',
  };
}

const fold = (s: string): string => s.normalize('NFD').replace(/\p{Diacritic}/gu, '').toLowerCase().trim();

/**
 * Keeps the candidates that really match: the exact birth date (servers may match a partial or
 * a range) and the family name, ignoring case and accents. Never picks among several.
 */
export function exactDemographicMatches(intake: Intake, patients: Patient[]): Patient[] {
  const family = fold(intake.patient.name.family);
  return patients.filter(
    (p) => p.birthDate === intake.patient.birthDate && (p.name ?? []).some((n) => n.family !== undefined && fold(n.family) === family),
  );
}
