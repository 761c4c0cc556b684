/**
 * Which cases a specialist may open. A token whose only role on a case route is `specialist` (no
 * `admin`, no `case_manager`) is checked against the case's current assignment, by the token's
 * subject and the `userSub` the specialist directory binds to each specialist:
 *
 * - `unless-assigned-elsewhere` (default): refused when the case is assigned to a specialist bound to
 *   another subject; cases not assigned yet, or assigned to a specialist without a bound subject,
 *   stay open to specialists (as the opinion and information-request rules have it);
 * - `assigned`: only the cases currently assigned to the specialist bound to this subject (HIPAA's
 *   minimum necessary, for deployments whose specialists all sign in with a bound subject).
 *
 * Admins and case managers are not limited; family upload tokens are scoped to their case already.
 * @packageDocumentation
 */
import type { NextFunction, Request, Response } from 'express';
import type { Queryable } from '../db/database';
import { errorFields, logger } from '../log';
import { HttpProblem } from './problem';

export const SPECIALIST_CASE_ACCESS = ['unless-assigned-elsewhere', 'assigned'] as const;
export type SpecialistCaseAccess = (typeof SPECIALIST_CASE_ACCESS)[number];

const CASE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The subject bound to the case's current assignment: a string, null (assigned, unbound) or undefined (not assigned). */
async function assignedSubject(db: Queryable, caseId: string): Promise<string | null | undefined> {
  const { rows } = await db.query<{ user_sub: string | null }>(
    `SELECT s.user_sub FROM assignments a JOIN specialists s ON s.id = a.specialist_id WHERE a.case_id = $1 AND a.ended_at IS NULL LIMIT 1`,
    [caseId],
  );
  return rows.length === 0 ? undefined : (rows[0]?.user_sub ?? null);
}

/** Why a specialist may not open the case, or undefined when they may. */
export async function specialistRefusal(db: Queryable, caseId: string, subject: string, mode: SpecialistCaseAccess): Promise<string | undefined> {
  const bound = await assignedSubject(db, caseId);
  if (mode === 'assigned') return bound === subject ? undefined : 'A specialist sees only the cases assigned to them.';
  return typeof bound === 'string' && bound !== subject ? 'This case is assigned to another specialist.' : undefined;
}

/** Express middleware for a `/api/cases/:id…` route; runs after authentication and the role check. */
export function specialistCaseAccess(db: Queryable, mode: SpecialistCaseAccess) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const principal = req.principal;
    const caseId = req.params.id;
    const onlySpecialist =
      principal !== undefined && principal.scope === undefined && principal.roles.includes('specialist') &&
      !principal.roles.includes('admin') && !principal.roles.includes('case_manager');
    // A malformed id is left to the route's own validation (400 naming it).
    if (!onlySpecialist || typeof caseId !== 'string' || !CASE_ID.test(caseId)) {
      next();
      return;
    }
    specialistRefusal(db, caseId, principal.sub, mode).then(
      (refusal) => next(refusal ? new HttpProblem(403, 'Forbidden', refusal) : undefined),
      (err: unknown) => {
        logger.error('case access check failed', errorFields(err));
        next(err);
      },
    );
  };
}
