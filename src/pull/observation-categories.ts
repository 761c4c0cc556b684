/**
 * The Observation searches of a pull without `Patient/$everything`. US Core servers search
 * Observations by patient and category (https://hl7.org/fhir/us/core/STU6.1/CapabilityStatement-us-core-server.html),
 * and a token search matches a code the resource has (https://hl7.org/fhir/R4/search.html#token):
 * an Observation is found only by a query naming one of its category codes. These queries together
 * ask for every Observation of the child, whatever its category carries. A server that declares its
 * Observation search parameters without `category` is asked once, without it ({@link observationSearchesFor}).
 */

/**
 * The Observation categories asked for in one query besides laboratory and vital-signs (each has a
 * query of its own): the other codes of https://terminology.hl7.org/CodeSystem-observation-category.html,
 * then those US Core adds (https://hl7.org/fhir/us/core/STU6.1/CodeSystem-us-core-category.html:
 * functional, cognitive and disability status, social determinants of health), on which US Core
 * servers file a child's screenings and assessments. Codes without a system: a token search matches
 * the code in any system (https://hl7.org/fhir/R4/search.html#token), so a server filing them under
 * another system still answers.
 */
export const OTHER_OBSERVATION_CATEGORIES = [
  'social-history',
  'imaging',
  'procedure',
  'survey',
  'exam',
  'therapy',
  'activity',
  'functional-status',
  'cognitive-status',
  'disability-status',
  'sdoh',
] as const;

/** Every category code a query of its own asks for: laboratory, vital-signs and {@link OTHER_OBSERVATION_CATEGORIES}. */
export const LISTED_OBSERVATION_CATEGORIES = ['laboratory', 'vital-signs', ...OTHER_OBSERVATION_CATEGORIES] as const;

/** One Observation search: its stable task key, its parameters besides `patient`, and what a refusal leaves out. */
export interface ObservationSearch {
  /** Stable: `lastCompletedQueries` bounds the next re-pull of the query by it (server-time.ts). */
  readonly key: string;
  readonly params: Readonly<Record<string, string>>;
  /**
   * A query not every server can answer: when the server refuses it as one it does not support, the
   * query ends complete with this among its server messages (what was not asked for), not the pull failed.
   */
  readonly whenRefused?: string;
  /**
   * Another query of the same pull and source that asks for everything this one's refusal leaves out:
   * when that one completed unrefused, the refusal loses nothing and is said as information, with
   * `said` (`covered-refusals.ts`), instead of a warning that the record may lack something.
   */
  readonly coveredBy?: { readonly key: string; readonly said: string };
}

/**
 * The Observation searches, in plan order. Which query brings which Observation:
 *
 * - `laboratory`, `vital-signs`, the other categories (a comma is OR): one with any of those codes,
 *   in any system — also one that carries a local coding beside it (`[laboratory, LAB-local]` has
 *   laboratory: found by the laboratory query);
 * - `category:missing=true` (https://hl7.org/fhir/R4/search.html#modifiers): one filed without a category;
 * - `category:not=<every code above>`: one whose category has none of those codes — a local code
 *   only (`http://ehr.example.org/obs-cat|LAB`), text only (`{text: "Laboratory"}`), and, as the
 *   token `:not` includes "resources that have no value for the parameter"
 *   (https://hl7.org/fhir/R4/search.html#token), one without a category. `:not` is "the resource does
 *   not have the value": on the repeating `category` it excludes an Observation having any listed
 *   code on any of its categories, which a listed query brings.
 *
 * The `:not` values are one comma list: plan parameters are one value per name (`PlannedQuery.params`),
 * so the repeated form (`category:not=a&category:not=b`, which AND together) cannot be sent. Servers
 * implementing `:not` with a list (HAPI, Medplum and so the sandbox) read it as "has none of these";
 * a server reading the comma literally as OR ("lacks a, or lacks b") answers with more Observations,
 * never fewer: stored once each (the raw store keeps a version once), counted by both queries.
 *
 * `:missing` and `:not` are asked for both, each refusal said: the plan cannot know beforehand which
 * modifiers a server supports (a CapabilityStatement does not list them), and each covers what the
 * other's refusal leaves out — HAPI refuses `:missing` unless it indexes missing fields, other
 * servers refuse `:not`. Where both are answered, an Observation without a category is brought by
 * both (stored once, counted in each query's progress).
 */
export const OBSERVATION_SEARCHES: readonly ObservationSearch[] = [
  { key: 'Observation:laboratory', params: { category: 'laboratory' } },
  { key: 'Observation:vital-signs', params: { category: 'vital-signs' } },
  { key: 'Observation:other-categories', params: { category: OTHER_OBSERVATION_CATEGORIES.join(',') } },
  {
    key: 'Observation:no-category',
    params: { 'category:missing': 'true' },
    whenRefused:
      'Observations filed without a category were not asked for by category:missing=true: the server does not search for a missing category (the query by category:not asks for them too, unless the server refused it as well)',
    coveredBy: { key: 'Observation:unlisted-categories', said: 'the server answered the query by category:not, which asked for them: none is missing' },
  },
  {
    key: 'Observation:unlisted-categories',
    params: { 'category:not': LISTED_OBSERVATION_CATEGORIES.join(',') },
    whenRefused:
      'Observations whose category has none of the codes asked for (only a local code, or only text) were not asked for: the server does not search with category:not, so such Observations from this source are not in the record',
  },
];

/**
 * Every Observation of the child in one query, by no category: for a server that declares Observation
 * search parameters without `category` (see {@link observationSearchesFor}). A key of its own, never
 * one of {@link OBSERVATION_SEARCHES}: its bound (`lastCompletedQueries`) is when it last brought every
 * Observation, and a server switching between the two shapes has each query asked from its own last
 * completion, or in full where it never completed.
 */
export const ALL_OBSERVATIONS_SEARCH: ObservationSearch = { key: 'Observation:all', params: {} };

/**
 * The Observation searches for a server declaring `declared` for Observation
 * (CapabilityStatement.rest.resource.searchParam, https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam;
 * undefined where it lists none): {@link OBSERVATION_SEARCHES}, unless the list leaves `category` out.
 * Such a server may refuse the parameter (400: the laboratory query would fail the pull) or ignore it
 * (each of the five queries would bring every Observation, https://hl7.org/fhir/R4/search.html#errors):
 * it is asked {@link ALL_OBSERVATIONS_SEARCH} alone.
 */
export function observationSearchesFor(declared: ReadonlySet<string> | undefined): readonly ObservationSearch[] {
  return declared !== undefined && !declared.has('category') ? [ALL_OBSERVATIONS_SEARCH] : OBSERVATION_SEARCHES;
}
