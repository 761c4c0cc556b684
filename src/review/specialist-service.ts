/**
 * The specialist directory: admins add specialists (NPI checked with its Luhn check digit,
 * specialties from the matching rules), deactivate them or change their specialties. A deactivation
 * releases the specialist's open cases back to matching (`specialist-deactivation.ts`).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { CaseServiceDeps } from '../cases/case-service';
import type { Principal } from '../http/auth';
import { conflict, notFound } from '../http/problem';
import { logger } from '../log';
import { nowOf } from '../billing/billing-deps';
import type { SpecialtyMatching } from './specialty-matching';
import { displayName, practitionerOf, practitionerRoleOf } from './practitioner';
import {
  findSpecialist,
  findSpecialistConflict,
  insertSpecialist,
  listSpecialists,
  openCaseCounts,
  updateSpecialist,
  type SpecialistRecord,
} from './specialist-repository';
import { unknownSpecialties, type NewSpecialistBody, type SpecialistPatchBody } from './specialist-schema';
import { releaseOpenCases, type ReleasedCase } from './specialist-deactivation';
import { HttpProblem } from '../http/problem';

/** A directory entry as the API shows it. */
export function specialistView(deps: CaseServiceDeps, s: SpecialistRecord, openCases: number) {
  const matching = deps.domain.specialtyMatching;
  return {
    id: s.id,
    npi: s.npi,
    name: s.name,
    displayName: displayName(s),
    specialties: s.specialties.map((code) => ({
      system: matching.specialtySystem,
      code,
      display: matching.specialties.find((x) => x.code === code)?.display ?? code,
    })),
    active: s.active,
    userSub: s.userSub,
    openCases,
    practitioner: practitionerOf(s),
    practitionerRole: practitionerRoleOf(s, matching),
  };
}

/** The view type of a specialist. */
export type SpecialistView = ReturnType<typeof specialistView>;

function conflictFor(field: 'npi' | 'userSub'): never {
  throw conflict(
    field === 'npi' ? 'npi is already in the directory: change that specialist instead.' : 'userSub already belongs to another specialist.',
    { field },
  );
}

/** 400 naming each specialty code the matching rules do not know. */
function checkSpecialties(matching: SpecialtyMatching, codes: readonly string[] | undefined): void {
  const unknown = unknownSpecialties(matching, codes ?? []);
  if (unknown.length === 0) return;
  const known = matching.specialties.map((s) => `${s.code} (${s.display})`).join(', ');
  const errors = unknown.map((u) => ({
    field: `specialties.${u.index}`,
    pointer: `#/specialties/${u.index}`,
    detail: `${u.code} is not a specialty of mappings/specialty-matching.json; known: ${known}`,
  }));
  throw new HttpProblem(400, 'Invalid request', errors.map((e) => `${e.field}: ${e.detail}`).join('; '), errors);
}

/** Adds a specialist; 409 naming `npi` or `userSub` when either is already in the directory. */
export async function createSpecialist(deps: CaseServiceDeps, body: NewSpecialistBody): Promise<SpecialistView> {
  checkSpecialties(deps.domain.specialtyMatching, body.specialties);
  const id = randomUUID();
  const userSub = body.userSub ?? null;
  const inserted = await insertSpecialist(deps.db, { id, npi: body.npi, name: body.name, specialties: [...new Set(body.specialties)], active: body.active, userSub });
  if (!inserted) conflictFor((await findSpecialistConflict(deps.db, body.npi, userSub)) ?? 'npi');
  logger.info('specialist added', { userId: id });
  return getSpecialist(deps, id);
}

/** One specialist with their open case count; 404 when unknown. */
export async function getSpecialist(deps: CaseServiceDeps, id: string): Promise<SpecialistView> {
  const s = await findSpecialist(deps.db, id);
  if (!s) throw notFound(`Specialist ${id}`);
  return specialistView(deps, s, (await openCaseCounts(deps.db, [id])).get(id) ?? 0);
}

/** The directory, optionally only active specialists or one specialty. */
export async function getSpecialists(deps: CaseServiceDeps, filter: { active?: boolean; specialty?: string }): Promise<SpecialistView[]> {
  const all = await listSpecialists(deps.db, filter);
  const counts = await openCaseCounts(deps.db, all.map((s) => s.id));
  return all.map((s) => specialistView(deps, s, counts.get(s.id) ?? 0));
}

/** A specialist after a `PATCH`; with `released` when the PATCH deactivated them (`active: false`). */
export type PatchedSpecialistView = SpecialistView & { readonly released?: ReleasedCase[] };

/**
 * Changes a specialist's active flag, specialties or user subject. With `active: false` the change
 * is committed first (the specialist's token opens no case from then on), then each of their open
 * cases is released back to matching, and `released` says what became of each. Sending
 * `active: false` for a specialist inactive already releases any open case left (idempotent).
 * @throws HttpProblem 404 for an unknown specialist; 409 naming `userSub` when another specialist has it
 */
export async function patchSpecialist(deps: CaseServiceDeps, id: string, body: SpecialistPatchBody, actor: Principal): Promise<PatchedSpecialistView> {
  checkSpecialties(deps.domain.specialtyMatching, body.specialties);
  const existing = await findSpecialist(deps.db, id);
  if (!existing) throw notFound(`Specialist ${id}`);
  if (body.userSub) {
    const taken = await findSpecialistConflict(deps.db, null, body.userSub, id);
    if (taken) conflictFor(taken);
  }
  const updated = await updateSpecialist(
    deps.db,
    id,
    { active: body.active, specialties: body.specialties ? [...new Set(body.specialties)] : undefined, userSub: body.userSub },
    nowOf(deps),
  );
  // Given to another specialist at the same time (after the check above): 409 too, not a 500.
  if (!updated) conflictFor('userSub');
  logger.info('specialist changed', { userId: id });
  if (body.active !== false) return getSpecialist(deps, id);
  const released = await releaseOpenCases(deps, id, actor);
  return { ...(await getSpecialist(deps, id)), released };
}
