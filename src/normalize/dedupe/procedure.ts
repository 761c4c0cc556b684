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
 * The day is only the blocking key: a child can have the same procedure twice in one day (a lumbar
 * puncture at 08:00 with clear CSF and a repeat at 21:30 after a traumatic tap). A record that
 * states a time (performedDateTime with a time, or a performedPeriod whose start has one) states
 * the instant it started ({@link performedInstant}, compared as an instant: `08:00-05:00` is
 * `13:00Z`), the third dimension of the cluster state: two timed records merge only when they
 * started at the same instant, never through a date-only record (which still joins either by the
 * day rule). So two local evenings that share a UTC date (21:30-05:00 on the 1st and 20:00-05:00
 * on the 2nd) stay apart too. Overlapping periods with different starts also stay apart: overlap
 * is not transitive, and a group may hold one start only (the safe side: both are shown).
 * @see https://hl7.org/fhir/R4/procedure.html
 * @see https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.status
 * @packageDocumentation
 */
import type { Procedure } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { bodySiteState, codeKeys, codingsOf, combineKeys, dateKeys, instantKey } from './keys';
import type { DedupeRule } from './rule';

/** A FHIR dateTime's time zone (`Z` or `±hh:mm`), which R4 requires when a time is given. */
const ZONE = /(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * When a Procedure started, as a cluster-state value, if the record states a time: epoch
 * milliseconds of performedDateTime, else of performedPeriod.start (so `08:00-05:00` at one
 * source and `13:00Z` at the other are one instant); undefined for a date-only (or absent)
 * value, which then joins by the day rule alone. A time without a zone (invalid in R4) is not
 * placed on the time line: it is kept as written (`local:`), equal only to the same text, so it
 * never meets a zoned time through the server's own zone.
 * Why a state and not a pair test: the state keeps the whole group to one start, so a date-only
 * record cannot join the 08:00 and the 21:30 lumbar punctures into one.
 * @see https://hl7.org/fhir/R4/datatypes.html#dateTime
 * @see https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.performed_x_
 */
export function performedInstant(p: Procedure): string | undefined {
  const value: unknown = p.performedDateTime ?? (typeof p.performedPeriod === 'object' && p.performedPeriod !== null ? p.performedPeriod.start : undefined);
  if (typeof value !== 'string' || value.length <= 10 || value.charAt(10) !== 'T') return undefined;
  if (!ZONE.test(value)) return `local:${value}`;
  const instant = instantKey(value);
  return instant === undefined || instant.startsWith('d:') ? undefined : `t:${instant}`;
}

/** The rule. */
export const procedureRule: DedupeRule = {
  name: 'procedure:code-date',
  resourceType: 'Procedure',
  approach: 'shared procedure coding + same performed date (same start instant when both state a time) + no other body site or status',
  blocking(resources) {
    const states = resources.map((r): ClusterState => {
      const p = r.resource as Procedure;
      return [bodySiteState(p.bodySite), typeof p.status === 'string' ? p.status : undefined, performedInstant(p)];
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
