/**
 * Procedure duplicates — rule `procedure:code-date`.
 *
 * Approach: the same procedure at two sources shares a code (any shared coding, after
 * mapping) and was performed the same day (performedDateTime, or the start of
 * performedPeriod). Block on (code, date, status bucket) so a `not-done` never merges
 * with a performed one. No performed date or `entered-in-error`: never merged.
 * @see https://hl7.org/fhir/R4/procedure.html
 * @packageDocumentation
 */
import type { Procedure } from 'fhir/r4';
import { dedupeWith } from './engine';
import { codeKeys, codingsOf, combineKeys, dateKeys } from './keys';
import type { DedupeRule } from './rule';

/** The rule. */
export const procedureRule: DedupeRule = {
  name: 'procedure:code-date',
  resourceType: 'Procedure',
  approach: 'shared procedure coding + same performed date',
  blocking(resources) {
    const keys = resources.map((r) => {
      const p = r.resource as Procedure;
      if (p.status === 'entered-in-error') return [];
      const bucket = p.status === 'not-done' ? 'not-done' : 'done';
      return combineKeys([...new Set(codeKeys(codingsOf(p.code)))], dateKeys(p.performedDateTime ?? p.performedPeriod?.start), [bucket]);
    });
    return { keys: (i) => keys[i] ?? [] };
  },
};

/** De-duplicates Procedures only. */
export const dedupeProcedures = dedupeWith(procedureRule);
