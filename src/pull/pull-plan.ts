import type { EndpointCapabilities } from '../endpoints/capabilities';
import { OBSERVATION_SEARCHES } from './observation-categories';
import { sourcePatientQuery } from './source-patient-query';

/**
 * What to ask a source for. With `Patient/$everything` (https://hl7.org/fhir/R4/patient-operation-everything.html)
 * one paged operation returns the whole compartment; otherwise the US Core searches per type
 * (https://hl7.org/fhir/us/core/STU6.1/CapabilityStatement-us-core-server.html), with `_include`
 * for the Medication of a MedicationRequest and the Endpoint of an ImagingStudy. A server may ignore
 * `_include` (https://hl7.org/fhir/R4/search.html#errors): what a page lacks is read after it and
 * stored with it (included-follow-up.ts).
 */
export interface PlannedQuery {
  /** Stable key of the query within a source (idempotent task identity). */
  readonly key: string;
  /** The resource type it returns (`*` for $everything). */
  readonly resourceType: string;
  /** Path relative to the FHIR base. */
  readonly path: string;
  readonly params: Record<string, string>;
}

/** Largest page we ask for; servers reduce it to what they allow. */
export const PULL_PAGE_SIZE = 500;

/** The clinical types a pull collects, in display order. */
export const PULL_RESOURCE_TYPES = [
  'Patient',
  'Observation',
  'DiagnosticReport',
  'DocumentReference',
  'ImagingStudy',
  'Condition',
  'MedicationRequest',
  'AllergyIntolerance',
  'Procedure',
  'Encounter',
  'Immunization',
] as const;
export type PullResourceType = (typeof PULL_RESOURCE_TYPES)[number];

/**
 * `$everything` streams by `_type`: the big types alone, the small ones together. `Medication`
 * and `Endpoint` come with what references them; `Binary` with documents. Every type we pull is
 * in exactly one group.
 */
const EVERYTHING_GROUPS: readonly (readonly string[])[] = [
  ['Patient', 'AllergyIntolerance', 'Condition', 'Immunization', 'Procedure'],
  ['Observation'],
  ['DiagnosticReport'],
  ['DocumentReference', 'Binary'],
  ['ImagingStudy', 'Endpoint'],
  ['MedicationRequest', 'Medication'],
  ['Encounter'],
];

/**
 * The place of an `$everything` stream (by its task key, `Patient/$everything:<types>`) in the plan's
 * order of groups; streams of unknown keys after them all (everything-types.ts picks a lead by it).
 */
export function everythingStreamRank(queryKey: string): number {
  const first = queryKey.replace(/^Patient\/\$everything:/, '').split(',')[0] ?? '';
  const rank = EVERYTHING_GROUPS.findIndex((group) => group.includes(first));
  return rank < 0 ? EVERYTHING_GROUPS.length : rank;
}

/** Kept here for the modules and tests that import it with the plan. */
export { OTHER_OBSERVATION_CATEGORIES } from './observation-categories';

interface SearchSpec {
  readonly type: PullResourceType;
  readonly key: string;
  readonly params: Record<string, string>;
  /**
   * A query not every server can answer: when the server refuses it as one it does not support, it
   * ends with this said among the server's messages (what was not asked for), not the pull failed.
   */
  readonly whenRefused?: string;
  /** Another query asking for everything this one's refusal leaves out (see `ObservationSearch.coveredBy`). */
  readonly coveredBy?: { readonly key: string; readonly said: string };
}

const SEARCHES: readonly SearchSpec[] = [
  // Every Observation of the child, whatever its category carries: by laboratory, vital-signs, every
  // other category code, a missing category, and a category with none of those codes (observation-categories.ts).
  ...OBSERVATION_SEARCHES.map((search): SearchSpec => ({ type: 'Observation', ...search })),
  { type: 'DiagnosticReport', key: 'DiagnosticReport', params: {} },
  { type: 'DocumentReference', key: 'DocumentReference', params: {} },
  { type: 'ImagingStudy', key: 'ImagingStudy', params: { _include: 'ImagingStudy:endpoint' } },
  { type: 'Condition', key: 'Condition', params: {} },
  { type: 'MedicationRequest', key: 'MedicationRequest', params: { _include: 'MedicationRequest:medication' } },
  { type: 'AllergyIntolerance', key: 'AllergyIntolerance', params: {} },
  { type: 'Procedure', key: 'Procedure', params: {} },
  { type: 'Encounter', key: 'Encounter', params: {} },
  { type: 'Immunization', key: 'Immunization', params: {} },
];

export interface PlanInput {
  readonly patientId: string;
  readonly capabilities: EndpointCapabilities | null;
  /** Incremental pull: only what changed since (FHIR instant). */
  readonly since?: string;
  /**
   * Per query (by task key), when the same query last completed for this patient in a pull without an
   * explicit `since`, by the EHR's clock where it gave its time (`lastCompletedQueries`, server-time.ts): only what changed since then is
   * asked for; a query with none is pulled in full. For a re-pull, where one instant for every query
   * would miss what changed in the types, sources or patients the last pull did not cover.
   */
  readonly sinceOf?: (queryKey: string) => string | undefined;
  /** Limit to these types (all when absent). The child's Patient is read all the same (see {@link planPull}). */
  readonly types?: readonly string[];
}

/** For a query the server may refuse without failing the pull (see `SearchSpec.whenRefused`), what its refusal leaves out. */
export function whenRefused(queryKey: string): string | undefined {
  return SEARCHES.find((search) => search.key === queryKey)?.whenRefused;
}

/** The queries whose refusal another query of the plan covers (see `SearchSpec.coveredBy`). */
export function coveredRefusals(): { readonly key: string; readonly refusal: string; readonly coveredBy: string; readonly said: string }[] {
  return SEARCHES.flatMap((s) => (s.whenRefused !== undefined && s.coveredBy ? [{ key: s.key, refusal: s.whenRefused, coveredBy: s.coveredBy.key, said: s.coveredBy.said }] : []));
}

function supports(capabilities: EndpointCapabilities | null, type: string): boolean {
  // Unknown capabilities: try everything and let the server say what it does not support.
  return capabilities === null || capabilities.resources[type] !== undefined;
}

/** One `$everything` stream (see {@link EVERYTHING_GROUPS}) of the types in `types`. */
function everythingStream(id: string, key: string, types: readonly string[], since: string | undefined): PlannedQuery {
  return {
    key,
    resourceType: types.length === 1 ? (types[0] ?? '*') : '*',
    path: `Patient/${id}/$everything`,
    params: { _type: types.join(','), _count: String(PULL_PAGE_SIZE), ...(since ? { _since: since } : {}) },
  };
}

/**
 * The `$everything` streams of a source, and the Patient read on its own when no stream reads it in
 * full: a pull whose `types` leave Patient out, or whose Patient stream asks only for what changed
 * (`_since`). That stream then leaves Patient out of its `_type` (read once, counted once) and keeps
 * its key, the key of its group of types: the key is the bound of the next re-pull
 * (`lastCompletedQueries`), and the Patient, read in full by every pull, needs none.
 */
function planEverything(input: PlanInput, wanted: (type: string) => boolean, sinceOf: (key: string) => string | undefined): PlannedQuery[] {
  const id = encodeURIComponent(input.patientId);
  // One $everything stream per group of types (`_type`), so pages of different groups are
  // fetched in parallel: a single paged stream is capped by the server's round trip.
  const companions = new Set(['Binary', 'Endpoint', 'Medication']);
  let patientReadInFull = false;
  const streams = EVERYTHING_GROUPS.map((group) => (group.some((t) => !companions.has(t) && wanted(t)) ? group.filter((t) => companions.has(t) || wanted(t)) : []))
    .filter((group) => group.length > 0)
    .map((group) => {
      const key = `Patient/$everything:${group.join(',')}`;
      const since = sinceOf(key);
      if (group.includes('Patient') && !since) patientReadInFull = true;
      return { key, since, types: since ? group.filter((t) => t !== 'Patient') : group };
    })
    .filter((stream) => stream.types.some((t) => !companions.has(t)))
    .map((stream) => everythingStream(id, stream.key, stream.types, stream.since));
  return patientReadInFull ? streams : [sourcePatientQuery(input.patientId), ...streams];
}

/**
 * The queries for one source. Deterministic, so re-planning a pull yields the same task keys. Every
 * plan reads the child's Patient at the source in full, whatever `types` and `since` say
 * ({@link sourcePatientQuery}): by its own query, or by the `$everything` stream that asks for it in full.
 */
export function planPull(input: PlanInput): PlannedQuery[] {
  const wanted = (type: string): boolean => !input.types || input.types.length === 0 || input.types.includes(type);
  const sinceOf = (key: string): string | undefined => input.since ?? input.sinceOf?.(key);
  if (input.capabilities?.patientEverything) return planEverything(input, wanted, sinceOf);
  // The Patient in full, in every pull (never `_lastUpdated`): see sourcePatientQuery.
  const queries: PlannedQuery[] = [sourcePatientQuery(input.patientId)];
  for (const search of SEARCHES) {
    if (!wanted(search.type) || !supports(input.capabilities, search.type)) continue;
    const since = sinceOf(search.key);
    queries.push({
      key: search.key,
      resourceType: search.type,
      path: search.type,
      params: {
        patient: `Patient/${input.patientId}`,
        ...search.params,
        _count: String(PULL_PAGE_SIZE),
        ...(since ? { _lastUpdated: `gt${since}` } : {}),
      },
    });
  }
  return queries;
}
