/**
 * Procedure duplicates — rule `procedure:code-date`.
 *
 * Approach: the same procedure at two sources shares a code (any shared coding, after
 * mapping) and was performed the same day (performedDateTime, or the start of
 * performedPeriod). Block on (code, date, status bucket) so a `not-done` never merges
 * with a performed one. No performed date or `entered-in-error`: never merged. Another
 * body site is another procedure (tubes in the left and in the right ear, same day): records
 * whose `bodySite`s differ are never merged, not even through a record that names none
 * ({@link bodySiteState} as the cluster state), so a merge never unions two sites.
 * Status is a modifier element: records whose statuses differ (any two codes: a `stopped`
 * endoscopy aborted for laryngospasm and a `completed` one the same day) are never merged, not
 * even through a record without a status — merged, the survivor's status would stand for both
 * and one team's account would vanish. The status is a second dimension of the cluster state,
 * beside the body site (as for Conditions).
 * @see https://hl7.org/fhir/R4/procedure.html
 * @see https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.status
 * @packageDocumentation
 */
import type { Procedure } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { bodySiteState, codeKeys, codingsOf, combineKeys, dateKeys } from './keys';
import type { DedupeRule } from './rule';

/** The rule. */
export const procedureRule: DedupeRule = {
  name: 'procedure:code-date',
  resourceType: 'Procedure',
  approach: 'shared procedure coding + same performed date + no other body site or status',
  blocking(resources) {
    const states = resources.map((r): ClusterState => {
      const p = r.resource as Procedure;
      return [bodySiteState(p.bodySite), typeof p.status === 'string' ? p.status : undefined];
    });
    const keys = resources.map((r) => {
      const p = r.resource as Procedure;
      if (p.status === 'entered-in-error') return [];
      const bucket = p.status === 'not-done' ? 'not-done' : 'done';
      return combineKeys([...new Set(codeKeys(codingsOf(p.code)))], dateKeys(p.performedDateTime ?? p.performedPeriod?.start), [bucket]);
    });
    return { keys: (i) => keys[i] ?? [], state: (i) => states[i] };
  },
};

/** De-duplicates Procedures only. */
export const dedupeProcedures = dedupeWith(procedureRule);
