import type { EndpointCapabilities } from '../endpoints/capabilities';
import { scopeAllows, type ScopeInteraction } from '../fhir/scope';
import { notGrantedIssue } from './not-granted';
import { ALL_OBSERVATIONS_SEARCH, OBSERVATION_SEARCHES, observationSearchesFor, type ObservationSearch } from './observation-categories';
import type { ServerIssue } from './server-messages';
import { sourcePatientQuery } from './source-patient-query';

/**
 * What to ask a source for. With `Patient/$everything` (https://hl7.org/fhir/R4/patient-operation-everything.html)
 * one paged operation returns the whole compartment; otherwise the US Core searches per type
 * (https://hl7.org/fhir/us/core/STU6.1/CapabilityStatement-us-core-server.html), with `_include`
 * for the Medication of a MedicationRequest and the Endpoint of an ImagingStudy. A server may ignore
 * `_include` (https://hl7.org/fhir/R4/search.html#errors): what a page lacks is read after it and
 * stored with it (included-follow-up.ts).
 *
 * A type the SMART scope granted does not let this client ask for is left out (not-granted.ts): its
 * query is planned with {@link PlannedQuery.leftOut} set, so its task says why and nothing is sent.
 */
export interface PlannedQuery {
  /** Stable key of the query within a source (idempotent task identity). */
  readonly key: string;
  /** The resource type it returns (`*` for $everything). */
  readonly resourceType: string;
  /** Path relative to the FHIR base. */
  readonly path: string;
  readonly params: Record<string, string>;
  /**
   * Set when the plan leaves the query out (its types are not granted: not-granted.ts): what its task,
   * which sends nothing, ends `complete` with among its server messages.
   */
  readonly leftOut?: ServerIssue;
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

/** An Observation search (observation-categories.ts) as a search of the plan. */
const observationSpec = (search: ObservationSearch): SearchSpec => ({ type: 'Observation', ...search });

/** The searches of every type but Observation, whose searches depend on the server ({@link searchesOf}). */
const TYPE_SEARCHES: readonly SearchSpec[] = [
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

/** Every search a plan may hold: what a refused query says is looked up here by its key. */
const SEARCHES: readonly SearchSpec[] = [...[...OBSERVATION_SEARCHES, ALL_OBSERVATIONS_SEARCH].map(observationSpec), ...TYPE_SEARCHES];

/**
 * The searches of a source, in plan order. Every Observation of the child, whatever its category
 * carries: by laboratory, vital-signs, every other category code, a missing category, and a category
 * with none of those codes; or by one query without `category`, where the server declares Observation
 * search parameters without it (`observationSearchesFor`, observation-categories.ts). Then the other types.
 */
function searchesOf(capabilities: EndpointCapabilities | null): readonly SearchSpec[] {
  return [...observationSearchesFor(declaredSearchParams(capabilities, 'Observation')).map(observationSpec), ...TYPE_SEARCHES];
}

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
  /**
   * The SMART scope the EHR granted this client (`FhirEndpointClient.grantedScope`: the token
   * response's `scope`, https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5, the
   * scope requested where the response had none); undefined where no SMART scope applies or it is not
   * known: every type is asked for, and the server's 403s say what is not granted (not-granted.ts).
   */
  readonly scope?: string;
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

/**
 * The search parameters the server declares for `type` (CapabilityStatement.rest.resource.searchParam,
 * https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam);
 * undefined when it lists none: many servers omit them, and the usual ones are asked for.
 */
function declaredSearchParams(capabilities: EndpointCapabilities | null, type: string): ReadonlySet<string> | undefined {
  const params = capabilities?.resources[type]?.searchParams;
  return params !== undefined && params.length > 0 ? new Set(params) : undefined;
}

/**
 * The parameter a search of a type names the child by: `patient`, unless the server declares search
 * parameters for the type without it but with `subject` (both are the Patient compartment's
 * parameters for most types, https://hl7.org/fhir/R4/compartmentdefinition-patient.html). A server
 * may refuse a parameter it does not declare (400) or ignore it and answer with every patient's
 * records (https://hl7.org/fhir/R4/search.html#errors). Declaring neither: `patient` (the server's
 * answer decides).
 */
function patientParam(declared: ReadonlySet<string> | undefined): 'patient' | 'subject' {
  return declared !== undefined && !declared.has('patient') && declared.has('subject') ? 'subject' : 'patient';
}

/**
 * The query, left out with why (nothing is sent) when the scope granted does not let this client
 * `interaction` one of its `types`; as it is otherwise, and where no scope is known.
 */
function unlessGranted(query: PlannedQuery, types: readonly string[], interaction: ScopeInteraction, scope: string | undefined): PlannedQuery {
  const refused = types.filter((t) => !scopeAllows(scope, t, interaction));
  return refused.length > 0 && scope !== undefined ? { ...query, leftOut: notGrantedIssue(refused, scope) } : query;
}

/** Whether a task's query is a `Patient/[id]/$everything` stream (a read of the Patient's record, not a search). */
export function isEverythingStream(task: { readonly requestPath: string }): boolean {
  return task.requestPath.endsWith('$everything');
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
 *
 * `_type` names only types the scope granted lets this client read: the others of a group (companions
 * too) are left out, planned as one query of their own per group, keyed by them, that sends nothing
 * (see {@link PlannedQuery.leftOut}); a group none of whose own types is granted is that query alone.
 */
function planEverything(input: PlanInput, wanted: (type: string) => boolean, sinceOf: (key: string) => string | undefined): PlannedQuery[] {
  const id = encodeURIComponent(input.patientId);
  const granted = (type: string): boolean => scopeAllows(input.scope, type, 'read');
  // One $everything stream per group of types (`_type`), so pages of different groups are
  // fetched in parallel: a single paged stream is capped by the server's round trip.
  const companions = new Set(['Binary', 'Endpoint', 'Medication']);
  let patientReadInFull = false;
  const queries: PlannedQuery[] = [];
  for (const whole of EVERYTHING_GROUPS) {
    if (!whole.some((t) => !companions.has(t) && wanted(t))) continue;
    const group = whole.filter((t) => companions.has(t) || wanted(t));
    const notGranted = group.filter((t) => !granted(t));
    const asked = group.filter(granted);
    if (asked.some((t) => !companions.has(t))) {
      const key = `Patient/$everything:${asked.join(',')}`;
      const since = sinceOf(key);
      if (asked.includes('Patient') && !since) patientReadInFull = true;
      const types = since ? asked.filter((t) => t !== 'Patient') : asked;
      if (types.some((t) => !companions.has(t))) queries.push(everythingStream(id, key, types, since));
    }
    if (notGranted.length > 0 && input.scope !== undefined) {
      const key = `Patient/$everything:${notGranted.join(',')}`;
      queries.push({ ...everythingStream(id, key, notGranted, undefined), leftOut: notGrantedIssue(notGranted, input.scope) });
    }
  }
  return patientReadInFull ? queries : [unlessGranted(sourcePatientQuery(input.patientId), ['Patient'], 'search', input.scope), ...queries];
}

/**
 * The queries for one source. Deterministic, so re-planning a pull yields the same task keys. Every
 * plan reads the child's Patient at the source in full, whatever `types` and `since` say
 * ({@link sourcePatientQuery}): by its own query, or by the `$everything` stream that asks for it in full.
 *
 * `$everything` only where the scope granted lets this client read Patients (the operation is on the
 * Patient); a type the scope does not grant is left out ({@link PlannedQuery.leftOut}). A search names
 * the child by the parameter the server declares ({@link patientParam}), and asks only for what
 * changed (`_lastUpdated`, https://hl7.org/fhir/R4/search.html#lastUpdated) only where the server
 * declares `_lastUpdated` for the type or declares no parameter at all for it: otherwise in full, as
 * a server may refuse the parameter or ignore it. Records received again are stored once
 * (`commitPage`: keyed by version), and the query still completes, so the next re-pull has its bound.
 * Observations are asked by category unless the server declares Observation search parameters
 * without `category`: then by one query without it ({@link searchesOf}).
 */
export function planPull(input: PlanInput): PlannedQuery[] {
  const wanted = (type: string): boolean => !input.types || input.types.length === 0 || input.types.includes(type);
  const sinceOf = (key: string): string | undefined => input.since ?? input.sinceOf?.(key);
  if (input.capabilities?.patientEverything && scopeAllows(input.scope, 'Patient', 'read')) return planEverything(input, wanted, sinceOf);
  // The Patient in full, in every pull (never `_lastUpdated`): see sourcePatientQuery.
  const queries: PlannedQuery[] = [unlessGranted(sourcePatientQuery(input.patientId), ['Patient'], 'search', input.scope)];
  for (const search of searchesOf(input.capabilities)) {
    if (!wanted(search.type) || !supports(input.capabilities, search.type)) continue;
    const declared = declaredSearchParams(input.capabilities, search.type);
    const since = sinceOf(search.key);
    const changedOnly = Boolean(since) && (declared === undefined || declared.has('_lastUpdated'));
    const query: PlannedQuery = {
      key: search.key,
      resourceType: search.type,
      path: search.type,
      params: {
        [patientParam(declared)]: `Patient/${input.patientId}`,
        ...search.params,
        _count: String(PULL_PAGE_SIZE),
        ...(changedOnly ? { _lastUpdated: `gt${since}` } : {}),
      },
    };
    queries.push(unlessGranted(query, [search.type], 'search', input.scope));
  }
  return queries;
}
