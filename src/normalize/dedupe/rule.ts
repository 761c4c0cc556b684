/**
 * The shape of a de-duplication rule: one per resource type (module per type, as in
 * Metriport's fhir-deduplication), with a stable name used in {@link MergeRecord}s and in
 * `AssemblyOptions.disabledRules`.
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { MergeRecord, NormalizedResource } from '../types';
import type { BlockingSpec } from './cluster';
import type { MergePolicy } from './merge';

/** What a rule may look up besides the resources of its own type. */
export interface DedupeContext {
  /** The input resources of a type (e.g. Medications, for MedicationRequest → its Medication). */
  readonly ofType: (resourceType: string) => readonly NormalizedResource[];
}

/** One named duplicate-finding rule for one resource type. */
export interface DedupeRule extends MergePolicy {
  /** Stable name, `type:criteria`, e.g. `observation:code-time-value`. */
  readonly name: string;
  readonly resourceType: FhirResource['resourceType'];
  /** One line: what makes two resources the same fact. */
  readonly approach: string;
  /** Blocking keys and pair test over `resources` (all of `resourceType`). Pure. */
  readonly blocking: (resources: readonly NormalizedResource[], context: DedupeContext) => BlockingSpec;
}

/** Result of de-duplicating with a single rule (what each type module's function returns). */
export interface RuleDedupeResult {
  /** The input minus merged-away resources, survivors merged, references redirected. */
  readonly survivors: NormalizedResource[];
  readonly merges: MergeRecord[];
}
