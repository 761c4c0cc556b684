import type { FhirResource, Patient } from 'fhir/r4';

/**
 * The shared model of case assembly: raw resources in, one case bundle out.
 * Pipeline: raw → normalize (references, origin, terminology, units, structure checks)
 *           → dedupe (one module per resource type) → provenance → composition → document Bundle.
 * Every step is a pure function; the raw store is never changed, so any step can be replayed
 * with other mappings or with a dedupe rule switched off.
 */

/** Where a resource came from. */
export type Origin = 'local-ehr' | 'family-upload' | 'specialist';

/** One source of a case: a care team's endpoint (or the family's uploads). */
export interface SourceInfo {
  readonly sourceId: string;
  /** FHIR base URL of the source (for uploads: a `urn:` of the upload channel). */
  readonly baseUrl: string;
  /** Human name (care team / endpoint name). */
  readonly name: string;
  readonly origin: Origin;
  /** The child's Patient id at this source, when known. */
  readonly remotePatientId?: string;
  /** The pulls that brought its resources, newest last, and when the last one ran. */
  readonly pullIds: readonly string[];
  readonly lastFetchedAt?: string;
  /** Set when the case manager removed the source from the case: its records are all left out. */
  readonly removedReason?: string;
  /**
   * What the source's server said about its searches besides the results (the issues of its
   * `search.mode = outcome` OperationOutcomes, distinct, sorted): e.g. that it sent only the last two years.
   */
  readonly serverMessages?: readonly SourceServerMessage[];
  /**
   * The record types this source was not asked for because its EHR's token scope did not grant them,
   * in its latest pull that concerned each (`notGrantedTypesBySource`, src/pull/not-granted.ts).
   */
  readonly notGrantedTypes?: readonly string[];
}

/** One distinct issue a source's server reported about its searches. */
export interface SourceServerMessage {
  readonly severity: string;
  readonly code: string;
  readonly text: string;
}

/**
 * Severities of a server's search messages worth a reader's attention: they head the case record's
 * narrative and are counted in the records-complete notification (information is left to the
 * completeness report).
 */
export const NOTEWORTHY_SEVERITIES: ReadonlySet<string> = new Set(['fatal', 'error', 'warning']);

/** One raw resource as stored (unchanged JSON) with its provenance keys. */
export interface RawInput {
  readonly sourceId: string;
  readonly resourceType: string;
  readonly remoteId: string;
  readonly versionId: string;
  readonly fetchedAt: string;
  readonly sha256: string;
  readonly resource: Record<string, unknown>;
  /**
   * Optional (added by normalization): the `Bundle.entry.fullUrl` the resource arrived under, when it
   * came inside a Bundle (a family upload or a transaction file). Lets `urn:uuid:` references of that
   * Bundle resolve; pulled search results can omit it.
   */
  readonly fullUrl?: string;
  /**
   * Optional: the source's patient the resource was pulled for (the pull that stored its row first: a
   * version is stored once). When the source now points at another patient (the case manager found the
   * first match wrong), a resource of the Patient compartment is left out of the bundle; a shared one
   * (a Medication, an Organization…) only when no kept record points at it (normalize.ts).
   */
  readonly pulledForPatient?: string;
}

/** `${sourceId}|${resourceType}|${remoteId}`: identity of a remote resource (all its versions). */
export type RawKey = string;

export const rawKey = (r: { sourceId: string; resourceType: string; remoteId: string }): RawKey =>
  `${r.sourceId}|${r.resourceType}|${r.remoteId}`;

/** A resource after normalization, ready for de-duplication. */
export interface NormalizedResource {
  readonly key: RawKey;
  /** `urn:uuid:<uuid v5 of source base + type + remote id>`: deterministic. */
  readonly fullUrl: string;
  /** id = the uuid; references rewritten to `urn:uuid:`; `meta.source` and origin `meta.tag` set; mapped codings appended. */
  readonly resource: FhirResource;
  readonly sourceId: string;
  readonly origin: Origin;
  /**
   * Codings the terminology mapping gave the resource's `code` but that are not in it: taken back
   * because the value, kept as reported, is another kind of quantity than they state (units.ts,
   * `mapped-coding-withheld`). De-duplication still matches by them (the same analyte, reported in
   * another unit): they say what the resource is, not how its value is expressed.
   */
  readonly matchCodings?: readonly MatchCoding[];
}

/** A `system|code` pair used for matching only (see {@link NormalizedResource.matchCodings}). */
export interface MatchCoding {
  readonly system: string;
  readonly code: string;
}

/** A raw resource that is not in the bundle, and why (structure check failed, superseded version, …). */
export interface LeftOut {
  readonly key: RawKey;
  readonly sourceId: string;
  readonly resourceType: string;
  readonly remoteId: string;
  readonly versionId: string;
  readonly reason: string;
}

export interface AssemblyWarning {
  readonly key?: RawKey;
  /** e.g. `unresolved-reference`, `unit-not-ucum`. */
  readonly code: string;
  readonly message: string;
}

export interface UnmappedCode {
  readonly sourceId: string;
  readonly resourceType: string;
  readonly system: string;
  readonly code: string;
  readonly count: number;
}

export interface NormalizeResult {
  /** The case Patient (from intake, linked to each source's Patient) first, then every kept resource. */
  readonly resources: NormalizedResource[];
  readonly casePatient: Patient;
  readonly leftOut: LeftOut[];
  readonly warnings: AssemblyWarning[];
  readonly unmappedCodes: UnmappedCode[];
  /** Codings appended from mappings/, per source and type. */
  readonly mappedCodings: number;
}

/** One merge: duplicates folded into a survivor by a named rule. */
export interface MergeRecord {
  /** fullUrl of the survivor in the bundle. */
  readonly survivor: string;
  readonly survivorKey: RawKey;
  /** Keys of the raw resources folded into it (not including the survivor). */
  readonly mergedKeys: readonly RawKey[];
  /** The dedupe rule, e.g. `observation:code-time-value`. */
  readonly rule: string;
}

export interface DedupeResult {
  readonly resources: NormalizedResource[];
  readonly merges: MergeRecord[];
}

export interface AssemblyOptions {
  /** Dedupe rules switched off (re-assembly undoes their merges). */
  readonly disabledRules?: readonly string[];
  /** Bundle identifier and timestamp (the only things allowed to differ between two assemblies of the same raw data). */
  readonly bundleId: string;
  readonly timestamp: string;
}
