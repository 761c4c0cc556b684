/**
 * Which cases a specialist or an EHR client may open. A token whose only role among those a case
 * route allows is `specialist` or `ehr` (no `admin`, no `case_manager`) is checked on `/api/cases/:id…`:
 *
 * Specialists, against the case's current assignment and the `userSub` the directory binds to each
 * specialist (`SPECIALIST_CASE_ACCESS`):
 * - `unless-assigned-elsewhere` (default): refused when the case is assigned to a specialist bound to
 *   another subject, or to a specialist without a bound subject while the token's subject is bound to
 *   another specialist of the directory (that other doctor — the one a case was taken from, say — as
 *   the opinion and information-request rules have it); cases not assigned yet stay open to
 *   specialists, and cases assigned to a specialist without a bound subject to tokens the directory
 *   binds to nobody;
 * - `assigned`: only the cases currently assigned to the specialist bound to this subject (HIPAA's
 *   minimum necessary, for deployments whose specialists all sign in with a bound subject).
 *
 * In both modes, whatever the assignment:
 * - a token whose subject the directory binds to an *inactive* specialist opens no case (a
 *   deactivated specialist who still signs in: `review/specialist-deactivation.ts`);
 * - a case whose specialist is inactive, or that was released by a deactivation and waits for a new
 *   specialist (`review/reassignment-service.ts`), is opened by no specialist until a case manager
 *   gives it to one: nobody is its author meanwhile.
 *
 * EHR clients, against the endpoint whose `inboundSubject` is the token's subject (`EHR_CASE_ACCESS`):
 * - `linked-or-unbound` (default): a client bound to an endpoint opens only the cases that endpoint is
 *   a source (not removed) or a recipient of; a client bound to none is not limited — unless it was
 *   bound once and its endpoint was deleted or bound to another subject since: then it opens nothing;
 * - `linked`: only the cases linked to the endpoint the client is bound to.
 *
 * Admins and case managers are not limited; family upload tokens are scoped to their case already.
 * @packageDocumentation
 */
import type { NextFunction, Request, Response } from 'express';
import type { Queryable } from '../db/database';
import { errorFields, logger } from '../log';
import { OPEN_REVIEW_STATUSES } from '../review/specialist-repository';
import type { Principal } from './auth';
import { HttpProblem } from './problem';

/** Why a token bound to a deactivated specialist is refused, on every case route and the worklist. */
export const INACTIVE_SPECIALIST_ACCOUNT = 'This specialist account is inactive in the directory: it opens no case.';

/** Why no specialist opens a case whose specialist was deactivated, until a case manager assigns another. */
export const CASE_WAITS_FOR_SPECIALIST =
  'The specialist of this case was deactivated: the case waits for a case manager to give it to another specialist.';

/** Why no specialist opens a case released by a deactivation that then ended (cancelled, say) without another specialist. */
export const RELEASED_CASE_ENDED = 'The specialist of this case was deactivated and the case ended without another: no specialist opens it.';

export const SPECIALIST_CASE_ACCESS = ['unless-assigned-elsewhere', 'assigned'] as const;
export type SpecialistCaseAccess = (typeof SPECIALIST_CASE_ACCESS)[number];
export const EHR_CASE_ACCESS = ['linked-or-unbound', 'linked'] as const;
export type EhrCaseAccess = (typeof EHR_CASE_ACCESS)[number];

export interface CaseAccessModes {
  readonly specialist: SpecialistCaseAccess;
  readonly ehr: EhrCaseAccess;
}

const CASE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Who holds a case, and what the directory says of the caller: everything a specialist's access depends on. */
interface CaseHolder {
  /** The currently assigned specialist; undefined when the case is not assigned (or unknown). */
  readonly assigned?: { readonly specialistId: string; readonly userSub: string | null; readonly active: boolean };
  /**
   * Not assigned now and assigned before: released by a deactivation (`waiting`: in review, for a new
   * specialist; else it ended — cancelled, say — without one). Whatever the status: a released case
   * that a case manager then cancelled is not open to every specialist because it has no assignment.
   */
  readonly released?: 'waiting' | 'ended';
  /** The directory binds the caller's subject to an inactive specialist. */
  readonly callerInactive: boolean;
  /** The directory binds the caller's subject to a specialist other than the assigned one. */
  readonly callerBoundElsewhere: boolean;
}

/**
 * Who holds the case and what the directory says of `subject` ({@link CaseHolder}), in one query (it
 * runs on every case route a specialist calls); an unknown case is held by no one (the route answers 404).
 */
async function caseHolder(db: Queryable, caseId: string, subject: string): Promise<CaseHolder> {
  const { rows } = await db.query<{
    specialist_id: string | null; user_sub: string | null; active: boolean | null; released: boolean; open_review: boolean; caller_inactive: boolean; caller_elsewhere: boolean;
  }>(
    `SELECT s.id AS specialist_id, s.user_sub, s.active,
            COALESCE(a.id IS NULL AND EXISTS (SELECT 1 FROM assignments e WHERE e.case_id = c.id AND e.ended_at IS NOT NULL), false) AS released,
            COALESCE(c.status = ANY($2::text[]), false) AS open_review,
            EXISTS (SELECT 1 FROM specialists x WHERE x.user_sub = $3 AND NOT x.active) AS caller_inactive,
            EXISTS (SELECT 1 FROM specialists x WHERE x.user_sub = $3 AND x.id <> s.id) AS caller_elsewhere
     FROM (SELECT 1) AS one
     LEFT JOIN cases c ON c.id = $1
     LEFT JOIN assignments a ON a.case_id = c.id AND a.ended_at IS NULL
     LEFT JOIN specialists s ON s.id = a.specialist_id`,
    [caseId, [...OPEN_REVIEW_STATUSES], subject],
  );
  const row = rows[0];
  if (!row) return { callerInactive: false, callerBoundElsewhere: false };
  const assigned = row.specialist_id !== null ? { specialistId: row.specialist_id, userSub: row.user_sub, active: row.active === true } : undefined;
  const released = row.released ? (row.open_review ? 'waiting' : 'ended') : undefined;
  return { ...(assigned ? { assigned } : {}), ...(released ? { released } : {}), callerInactive: row.caller_inactive, callerBoundElsewhere: row.caller_elsewhere };
}

/** Why a specialist may not open the case, or undefined when they may. */
export async function specialistRefusal(db: Queryable, caseId: string, subject: string, mode: SpecialistCaseAccess): Promise<string | undefined> {
  const { assigned, released, callerInactive, callerBoundElsewhere } = await caseHolder(db, caseId, subject);
  if (callerInactive) return INACTIVE_SPECIALIST_ACCOUNT;
  if (released === 'ended') return RELEASED_CASE_ENDED;
  if (released === 'waiting' || assigned?.active === false) return CASE_WAITS_FOR_SPECIALIST;
  if (mode === 'assigned') return assigned?.userSub === subject ? undefined : 'A specialist sees only the cases assigned to them.';
  if (!assigned) return undefined;
  if (assigned.userSub !== null) return assigned.userSub === subject ? undefined : 'This case is assigned to another specialist.';
  // Assigned to a specialist with no bound subject: a token bound to another specialist of the
  // directory is that other doctor (the previous one after a reassignment, say), not this one.
  return callerBoundElsewhere ? 'This case is assigned to another specialist.' : undefined;
}

/**
 * At start, in the permissive mode: how many active specialists the directory binds to no token
 * subject (`userSub`), logged as a warning when any. Any token with the specialist role may open,
 * write and sign the opinion of a case assigned to such a specialist — under that specialist's name
 * and NPI (the signer's own subject is recorded as its author): bind every specialist (`PATCH
 * /api/specialists/:id {userSub}`) and set `SPECIALIST_CASE_ACCESS=assigned` where that trust is not
 * wanted. Counts only; a failure to count is logged and does not stop the start.
 */
export async function warnUnboundSpecialists(db: Queryable, mode: SpecialistCaseAccess): Promise<number | undefined> {
  if (mode !== 'unless-assigned-elsewhere') return undefined;
  try {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM specialists WHERE active AND user_sub IS NULL');
    const unbound = rows[0]?.n ?? 0;
    if (unbound > 0) {
      logger.warn('active specialists bound to no token subject: any specialist token may act, and sign, for them (SPECIALIST_CASE_ACCESS=unless-assigned-elsewhere)', { counts: { unbound } });
    }
    return unbound;
  } catch (err) {
    logger.warn('unbound specialists not counted', errorFields(err));
    return undefined;
  }
}

/** Whether `subject` was bound to an endpoint that was deleted or bound to another subject since (migration 028). */
async function wasRetired(db: Queryable, subject: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM retired_inbound_subjects WHERE subject = $1', [subject]);
  return rows.length > 0;
}

/**
 * Why an EHR client may not open the case, or undefined when it may. A client whose binding was
 * removed (endpoint deleted, `inboundSubject` changed) opens nothing, in either mode: it was limited
 * to its endpoint's cases, and losing the binding must not make it unlimited.
 */
export async function ehrRefusal(db: Queryable, caseId: string, subject: string, mode: EhrCaseAccess): Promise<string | undefined> {
  const { rows } = await db.query<{ linked: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM case_sources s WHERE s.case_id = $2 AND s.endpoint_id = e.id AND s.state <> 'removed')
         OR EXISTS (SELECT 1 FROM case_recipients r WHERE r.case_id = $2 AND r.endpoint_id = e.id) AS linked
     FROM endpoints e WHERE e.inbound_subject = $1 AND e.deleted_at IS NULL`,
    [subject, caseId],
  );
  const bound = rows[0];
  if (!bound) {
    if (await wasRetired(db, subject)) {
      return "This EHR client's endpoint binding was removed (the endpoint was deleted or its inboundSubject changed): it opens no case.";
    }
    return mode === 'linked' ? 'This EHR client is not bound to a registered endpoint (inboundSubject).' : undefined;
  }
  return bound.linked ? undefined : 'This case is not shared with this EHR: its endpoint is neither a source nor a recipient of the case.';
}

/** The limited roles the principal acts with on this route; none when it holds a broader one. */
function limitedRoles(principal: Principal | undefined, routeRoles: readonly string[]): ('specialist' | 'ehr')[] {
  if (!principal || principal.scope !== undefined) return [];
  const held = routeRoles.filter((r) => (principal.roles as readonly string[]).includes(r));
  if (held.some((r) => r !== 'specialist' && r !== 'ehr')) return [];
  return held.filter((r): r is 'specialist' | 'ehr' => r === 'specialist' || r === 'ehr');
}

/**
 * Express middleware for a `/api/cases/:id…` route; runs after authentication and the role check.
 * A token acting with several limited roles (specialist and ehr) passes when one of them allows it.
 */
export function caseAccess(db: Queryable, modes: CaseAccessModes, routeRoles: readonly string[]) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const principal = req.principal;
    const roles = limitedRoles(principal, routeRoles);
    const caseId = req.params.id;
    // A malformed id is left to the route's own validation (400 naming it).
    if (!principal || roles.length === 0 || typeof caseId !== 'string' || !CASE_ID.test(caseId)) {
      next();
      return;
    }
    Promise.all(
      roles.map((role) => (role === 'specialist' ? specialistRefusal(db, caseId, principal.sub, modes.specialist) : ehrRefusal(db, caseId, principal.sub, modes.ehr))),
    ).then(
      (refusals) => next(refusals.every((why) => why !== undefined) ? new HttpProblem(403, 'Forbidden', refusals[0] ?? 'Forbidden') : undefined),
      (err: unknown) => {
        logger.error('case access check failed', errorFields(err));
        next(err);
      },
    );
  };
}
