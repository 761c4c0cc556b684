/**
 * De-duplication across sources: one module per resource type (each with its "Approach"),
 * registered here as named rules. A merge never joins two records of one source
 * (`NormalizedResource.sourceId`), not even transitively through a record of another
 * source: what one source recorded twice is two facts (see `cluster.ts`). Family uploads
 * are one source (`family-uploads`); their DICOM files are already grouped into one
 * ImagingStudy per StudyInstanceUID before de-duplication, which then merges it with the
 * pulled studies of the same UID.
 *
 * Patients are never merged (the case Patient links to each source's Patient); supporting
 * resources (Organization, Practitioner, Medication, Endpoint, Binary, …) are not merged
 * either: each source's stay, so every reference of that source still resolves.
 * Anchor: Metriport `packages/core/src/fhir-deduplication/` (one module per type, pure functions);
 * unlike it, nothing is destroyed (raw data is never changed) and every merge is recorded.
 * @see https://github.com/metriport/metriport/tree/develop/packages/core/src/fhir-deduplication
 * @packageDocumentation
 */
import type { DedupeResult, NormalizedResource } from '../types';
import { allergyIntoleranceRule } from './allergy-intolerance';
import { conditionRule } from './condition';
import { diagnosticReportRule } from './diagnostic-report';
import { documentReferenceRule } from './document-reference';
import { encounterRule } from './encounter';
import { runRules } from './engine';
import { imagingStudyRule } from './imaging-study';
import { immunizationRule } from './immunization';
import { medicationRequestRule } from './medication-request';
import { observationRule } from './observation';
import { procedureRule } from './procedure';
import type { DedupeRule } from './rule';
import { findWithdrawnElsewhere, withWithdrawnTag } from './withdrawn-elsewhere';

export type { DedupeRule, DedupeContext, RuleDedupeResult } from './rule';
export { dedupeWith, runRules } from './engine';
export { dedupeObservations, observationRule } from './observation';
export { dedupeConditions, conditionRule } from './condition';
export { dedupeMedicationRequests, medicationRequestRule } from './medication-request';
export { dedupeDocumentReferences, documentReferenceRule } from './document-reference';
export { dedupeDiagnosticReports, diagnosticReportRule } from './diagnostic-report';
export { dedupeImagingStudies, imagingStudyRule } from './imaging-study';
export { dedupeImmunizations, immunizationRule } from './immunization';
export { dedupeAllergyIntolerances, allergyIntoleranceRule } from './allergy-intolerance';
export { dedupeProcedures, procedureRule } from './procedure';
export { dedupeEncounters, encounterRule } from './encounter';
export { isWithdrawnElsewhere, RECORD_CAUTION_SYSTEM, WITHDRAWN_ELSEWHERE } from './withdrawn-elsewhere';

/** Every rule, in the order they run. Names are stable: they are stored in MergeRecords and disabledRules. */
export const DEDUPE_RULES: readonly DedupeRule[] = [
  encounterRule,
  conditionRule,
  allergyIntoleranceRule,
  medicationRequestRule,
  immunizationRule,
  procedureRule,
  observationRule,
  diagnosticReportRule,
  documentReferenceRule,
  imagingStudyRule,
];

/** Names of every rule. */
export const DEDUPE_RULE_NAMES: readonly string[] = DEDUPE_RULES.map((r) => r.name);

/** Options of {@link dedupe}. */
export interface DedupeOptions {
  /** Rules switched off: their duplicates stay unmerged. Unknown names are refused. */
  readonly disabledRules?: readonly string[];
}

/**
 * Merges duplicates across sources with every enabled rule. Pure: the input (and the raw
 * store behind it) is unchanged; the result lists the survivors (merged, references
 * redirected) in input order and one MergeRecord per merge. A record that another source
 * withdrew as entered in error (`withdrawn-elsewhere.ts`, judged by every rule: a caution, not a
 * merge) is tagged, in the survivor it was merged into where it was.
 */
export function dedupe(resources: readonly NormalizedResource[], options: DedupeOptions = {}): DedupeResult {
  const disabled = new Set(options.disabledRules ?? []);
  const unknown = [...disabled].filter((n) => !DEDUPE_RULE_NAMES.includes(n));
  if (unknown.length > 0) {
    throw new RangeError(`Unknown dedupe rule(s): ${unknown.join(', ')}. Known: ${DEDUPE_RULE_NAMES.join(', ')}`);
  }
  const result = runRules(resources, DEDUPE_RULES.filter((r) => !disabled.has(r.name)));
  const withdrawn = findWithdrawnElsewhere(resources, DEDUPE_RULES);
  if (withdrawn.length === 0) return result;
  const fullUrlOf = new Map(resources.map((r) => [r.key, r.fullUrl]));
  for (const m of result.merges) for (const k of m.mergedKeys) fullUrlOf.set(k, m.survivor);
  const cautioned = new Set(withdrawn.map((key) => fullUrlOf.get(key)));
  return { ...result, resources: result.resources.map((r) => (cautioned.has(r.fullUrl) ? { ...r, resource: withWithdrawnTag(r.resource) } : r)) };
}
