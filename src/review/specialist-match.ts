/**
 * Best match of a specialist for a case: the best-ranked specialty (see {@link rankSpecialties})
 * that has an active specialist, then the specialist of that specialty with the fewest open cases,
 * then the earliest added (stable).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { listSpecialists, openCaseCounts, type SpecialistRecord } from './specialist-repository';
import type { RankedSpecialty } from './specialty-matching';

/** The chosen specialist and why. */
export interface SpecialistMatch {
  readonly specialist: SpecialistRecord;
  readonly specialty: RankedSpecialty;
  readonly openCases: number;
}

/**
 * Picks the specialist; undefined when no active specialist has any of the ranked specialties.
 * `excludedNpi`: the referring physician's NPI — a second opinion is never given by the physician
 * who asked for it. `excludedSpecialistIds`: the specialist a case is taken from (reassignment) and
 * those it was reassigned away from before.
 */
export async function matchSpecialist(
  db: Queryable,
  ranked: readonly RankedSpecialty[],
  excludedNpi?: string,
  excludedSpecialistIds: readonly string[] = [],
): Promise<SpecialistMatch | undefined> {
  const active = (await listSpecialists(db, { active: true })).filter(
    (s) => (excludedNpi === undefined || s.npi !== excludedNpi) && !excludedSpecialistIds.includes(s.id),
  );
  const counts = await openCaseCounts(db, active.map((s) => s.id));
  for (const specialty of ranked) {
    const candidates = active
      .filter((s) => s.specialties.includes(specialty.code))
      .map((s) => ({ specialist: s, openCases: counts.get(s.id) ?? 0 }))
      .sort((a, b) => a.openCases - b.openCases || a.specialist.createdAt.getTime() - b.specialist.createdAt.getTime() || a.specialist.id.localeCompare(b.specialist.id));
    const best = candidates[0];
    if (best) return { specialist: best.specialist, specialty, openCases: best.openCases };
  }
  return undefined;
}
