import type { Bundle, HumanName, Patient } from 'fhir/r4';
import type { Intake } from '../cases/intake-schema';
import { visitPages } from '../fhir/bounded-paging';
import { escapeSearchValue, identifierToken, judgeIdentifierPage, type IdentifierPager } from '../fhir/identifier-match';
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

/**
 * Search parameters for demographic matching: family, first given name, exact birth date. The names
 * are escaped as search values (a comma would ask for either half).
 * @see https://hl7.org/fhir/R4/search.html#escaping
 */
export function demographicQuery(intake: Intake): Record<string, string> {
  return {
    family: escapeSearchValue(intake.patient.name.family),
    given: escapeSearchValue(intake.patient.name.given[0] ?? ''),
    birthdate: `eq${intake.patient.birthDate}`,
    _count: '20',
  };
}

const fold = (s: string): string => s.normalize('NFD').replace(/\p{Diacritic}/gu, '').toLowerCase().trim();
/** A given name folded, its spaces, hyphens and apostrophes as one space ("Mary-Ann" = "mary ann"). */
const foldGiven = (s: string): string => fold(s).replace(/[\s\-'\u2019]+/gu, ' ');

/** One of the name's given names is `given` (folded), or all of them are, joined ("Mary Ann" = ["Mary", "Ann"]). */
function hasGiven(name: HumanName, given: string): boolean {
  const names = (name.given ?? []).map(foldGiven);
  return names.includes(given) || names.join(' ') === given;
}

/**
 * Keeps the candidates that really match: the exact birth date (servers may match a partial or
 * a range), the family name, and the child's first given name as one of the candidate's given
 * names, whole, each ignoring case and accents. Never picks among several.
 *
 * The given name is checked whole because FHIR string search matches a prefix by default
 * (https://hl7.org/fhir/R4/search.html#string: `given=Sam` finds Samantha) and a server may ignore
 * the parameter altogether: a twin with another given name must never be taken for the child. A
 * nickname at the EHR ("Sam" for "Samuel") then finds no match, and the case manager chooses.
 */
export function exactDemographicMatches(intake: Intake, patients: Patient[]): Patient[] {
  const family = fold(intake.patient.name.family);
  const firstGiven = intake.patient.name.given[0];
  const given = firstGiven === undefined ? undefined : foldGiven(firstGiven);
  const named = (n: HumanName): boolean => n.family !== undefined && fold(n.family) === family && (given === undefined || hasGiven(n, given));
  return patients.filter((p) => p.birthDate === intake.patient.birthDate && (p.name ?? []).some(named));
}

/**
 * What keeps `patient` from being an exact demographic match of the intake's child
 * ({@link exactDemographicMatches}), one phrase per thing that differs, without the values (they are
 * in the candidate shown to the case manager, never in a reason that may be logged); empty when it matches.
 */
export function demographicDifferences(intake: Intake, patient: Patient): string[] {
  if (exactDemographicMatches(intake, [patient]).length > 0) return [];
  const family = fold(intake.patient.name.family);
  const firstGiven = intake.patient.name.given[0];
  const given = firstGiven === undefined ? undefined : foldGiven(firstGiven);
  const names = patient.name ?? [];
  const differences: string[] = [];
  if (patient.birthDate !== intake.patient.birthDate) differences.push(patient.birthDate === undefined ? 'it has no birth date' : 'its birth date is not the exact birth date of the intake');
  const sameFamily = names.filter((n) => n.family !== undefined && fold(n.family) === family);
  if (sameFamily.length === 0) differences.push("no name of it has the intake's family name");
  if (given !== undefined && !(sameFamily.length > 0 ? sameFamily : names).some((n) => hasGiven(n, given))) {
    differences.push(`no name of it${sameFamily.length > 0 ? ' with that family name' : ''} has the intake's first given name, whole`);
  }
  // Each part found on some name, but not on one and the same name.
  if (differences.length === 0) differences.push("the intake's family name and first given name are not on one and the same name of it");
  return differences;
}

/** Pages of a demographic search read at most, the first included (`_count` is only a hint: https://hl7.org/fhir/R4/search.html#count). */
export const DEMOGRAPHIC_MAX_PAGES = 5;
/** Patients (`match` entries, before the exact check) read at most across those pages. */
export const DEMOGRAPHIC_MAX_PATIENTS = 100;

/** Why a demographic search was not read to its last page. */
export type DemographicSearchStop = 'too-many' | 'paging-loop' | 'off-origin-next-link';

/** How a demographic search of a FHIR endpoint ended. */
export type DemographicSearch =
  /** Every page read (the last had no `next` link): `matches` are all the exact matches there. */
  | { readonly complete: true; readonly matches: Patient[]; readonly pages: number }
  /**
   * Not every page read: other exact matches may lie beyond. Never resolves to a patient, even
   * with one exact match so far; `matches` (the exact matches read) are candidates for review.
   */
  | { readonly complete: false; readonly matches: Patient[]; readonly pages: number; readonly stop: DemographicSearchStop; readonly reason: string };

const STOP_REASONS: Record<DemographicSearchStop, string> = {
  'too-many': `the search by the child's name and exact birth date returned more than ${DEMOGRAPHIC_MAX_PAGES} pages or ${DEMOGRAPHIC_MAX_PATIENTS} patients (the server may have ignored a search parameter), too many to be sure the child is there only once`,
  'paging-loop': "the search by the child's name and exact birth date pages in a circle (a next link leads back to a page already read), so not all of its results could be read to be sure the child is there only once",
  'off-origin-next-link': "the search by the child's name and exact birth date links its next page on another origin, which is never followed, so not all of its results could be read to be sure the child is there only once",
};

/**
 * Searches the endpoint by the child's name and exact birth date ({@link demographicQuery}) and
 * reads EVERY page of the answer, following the searchset's `next` links with the client's
 * same-origin `fetchPage` (https://hl7.org/fhir/R4/http.html#paging), keeping the exact matches
 * ({@link exactDemographicMatches}), each Patient id once. A second child with the same name and
 * birth date may sit on a later page: a server pages as it likes (`_count` is only a hint,
 * https://hl7.org/fhir/R4/search.html#count) and may ignore a parameter it does not support
 * (https://hl7.org/fhir/R4/search.html#errors), answering with far more patients than asked.
 *
 * Bounded: at most {@link DEMOGRAPHIC_MAX_PAGES} pages or {@link DEMOGRAPHIC_MAX_PATIENTS}
 * patients. When the bound is reached with pages left, or the paging cannot be followed to its end
 * (a loop, a `next` link off the endpoint's origin), the search is `complete: false`: the caller
 * must not resolve the child from it, but leave the choice to a case manager with the matches read.
 * Shared by source resolution (`source-service.ts`) and delivery (`delivery-runner.ts`).
 */
export async function searchDemographicMatches(client: IdentifierPager, intake: Intake): Promise<DemographicSearch> {
  const byId = new Map<string, Patient>();
  const withoutId: Patient[] = [];
  let read = 0;
  const first = await client.search('Patient', demographicQuery(intake));
  const { end, pages } = await visitPages(client, first, DEMOGRAPHIC_MAX_PAGES, (page) => {
    const patients = matchedPatients(page.bundle);
    read += patients.length;
    for (const p of exactDemographicMatches(intake, patients)) {
      if (p.id === undefined) withoutId.push(p);
      else if (!byId.has(p.id)) byId.set(p.id, p);
    }
    // Past the patient bound with pages left: stopped as too many (the last page ends it as complete).
    return read >= DEMOGRAPHIC_MAX_PATIENTS && page.nextUrl !== undefined ? 'stop' : 'next';
  });
  const matches = [...byId.values(), ...withoutId];
  if (end === 'last-page') return { complete: true, matches, pages };
  const stop: DemographicSearchStop = end === 'paging-loop' || end === 'off-origin-next-link' ? end : 'too-many';
  return { complete: false, matches, pages, stop, reason: STOP_REASONS[stop] };
}

/** How an identifier search of Patients read: its hits over the pages read, and whether every page was. */
export type IdentifierSearch = { readonly complete: true; readonly hits: Patient[] } | { readonly complete: false; readonly hits: Patient[]; readonly reason: string };

/**
 * `Patient?identifier=system|value`, every page of it (bounded: {@link DEMOGRAPHIC_MAX_PAGES}), the
 * hits being the Patients that carry the identifier (`judgeIdentifierPage`), each id once. A server
 * that ignores the parameter (https://hl7.org/fhir/R4/search.html#errors) answers with every Patient:
 * the one with the identifier may be on a later page, and so may a second one; a search not read to
 * its last page is never resolved from.
 */
export async function searchPatientsByIdentifier(client: IdentifierPager, wanted: { system: string; value: string }): Promise<IdentifierSearch> {
  const byId = new Map<string, Patient>();
  const withoutId: Patient[] = [];
  let unfiltered = false;
  const first = await client.search('Patient', { identifier: identifierToken(wanted) });
  const { end } = await visitPages(client, first, DEMOGRAPHIC_MAX_PAGES, (page) => {
    const judged = judgeIdentifierPage<Patient>(page, 'Patient', wanted);
    unfiltered ||= judged.unfiltered;
    for (const p of judged.hits) {
      if (p.id === undefined) withoutId.push(p);
      else if (!byId.has(p.id)) byId.set(p.id, p);
    }
    return 'next';
  });
  const hits = [...byId.values(), ...withoutId];
  if (end === 'last-page') return { complete: true, hits };
  const why = end === 'paging-loop' ? 'its pages go in a circle' : end === 'off-origin-next-link' ? 'it links its next page on another origin, which is never followed' : `it has more than ${DEMOGRAPHIC_MAX_PAGES} pages`;
  return {
    complete: false,
    hits,
    reason: `the search by the identifier${unfiltered ? ' answered with patients that do not carry it (the server ignores the parameter), and' : ''} could not be read to its end (${why}), so the child is not known to be there only once`,
  };
}
