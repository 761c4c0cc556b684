/**
 * Look-ups in loaded eligibility rules (`eligibility-rules.ts`), apart from their schema: code that
 * only reads rules (the FHIR face of a case, built in the assembly thread too) does not load zod.
 * @packageDocumentation
 */
import type { EligibilityRules, RelationshipRule } from './eligibility-rules';

/** Looks up a relationship rule by code, ignoring case (`mth` finds `MTH`). */
export function findRelationship(rules: EligibilityRules, code: string): RelationshipRule | undefined {
  const wanted = code.trim().toUpperCase();
  return rules.relationships.find((r) => r.code.toUpperCase() === wanted);
}

/** The code system URI of a relationship rule. */
export function relationshipSystemUri(rules: EligibilityRules, rule: RelationshipRule): string {
  return rules.relationshipSystems[rule.system];
}
