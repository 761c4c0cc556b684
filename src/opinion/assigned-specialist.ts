/**
 * Who writes the opinion. When the specialist directory (migration 006) has a current assignment
 * for the case, that specialist's name and NPI are used, and a token whose subject is bound to
 * another specialist is refused. Otherwise the specialist named in the PUT body, or the token's
 * subject, is the author. Nobody writes nor signs for an assigned specialist the directory has
 * deactivated.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { Principal } from '../http/auth';
import { CASE_WAITS_FOR_SPECIALIST } from '../http/case-access';
import { conflict, HttpProblem } from '../http/problem';
import type { SpecialistIdentity } from './opinion-schema';

interface AssignedRow {
  npi: string;
  name: unknown;
  user_sub: string | null;
  active: boolean;
}

/** "Given Family" from a stored name: a FHIR HumanName, a list of them, or plain text. */
export function displayName(name: unknown): string | undefined {
  if (typeof name === 'string') return name.trim() || undefined;
  const first = Array.isArray(name) ? (name[0] as unknown) : name;
  if (!first || typeof first !== 'object') return undefined;
  const n = first as { text?: unknown; given?: unknown; family?: unknown; prefix?: unknown; suffix?: unknown };
  if (typeof n.text === 'string' && n.text.trim()) return n.text.trim();
  const parts = [
    ...(Array.isArray(n.prefix) ? n.prefix : []),
    ...(Array.isArray(n.given) ? n.given : []),
    ...(typeof n.family === 'string' ? [n.family] : []),
  ].filter((p): p is string => typeof p === 'string' && p.trim() !== '');
  const suffix = Array.isArray(n.suffix) ? n.suffix.filter((s): s is string => typeof s === 'string').join(', ') : '';
  return parts.length > 0 ? `${parts.join(' ')}${suffix ? `, ${suffix}` : ''}` : undefined;
}

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;

/** The name in parts (family, given, prefix, suffix) of a stored directory name, when it has a family name. */
function nameParts(name: unknown): SpecialistIdentity['humanName'] | undefined {
  const first = Array.isArray(name) ? (name[0] as unknown) : name;
  if (!first || typeof first !== 'object') return undefined;
  const n = first as { family?: unknown; given?: unknown; prefix?: unknown; suffix?: unknown };
  if (typeof n.family !== 'string' || n.family.trim() === '') return undefined;
  const [given, prefix, suffix] = [strings(n.given) ?? [], strings(n.prefix), strings(n.suffix)];
  return { family: n.family, given, ...(prefix?.length ? { prefix } : {}), ...(suffix?.length ? { suffix } : {}) };
}

/**
 * The current assignment's specialist, when the directory exists and the case has one; with
 * `forShare` their row is locked `FOR SHARE` until the caller's transaction ends (see {@link resolveSpecialist}).
 */
async function assignedSpecialist(db: Queryable, caseId: string, forShare: boolean): Promise<AssignedRow | undefined> {
  const { rows: present } = await db.query<{ ok: boolean }>(
    "SELECT to_regclass('assignments') IS NOT NULL AND to_regclass('specialists') IS NOT NULL AS ok",
  );
  if (!present[0]?.ok) return undefined;
  const { rows } = await db.query<AssignedRow>(
    `SELECT s.npi, s.name, s.user_sub, s.active FROM assignments a JOIN specialists s ON s.id = a.specialist_id
     WHERE a.case_id = $1 AND a.ended_at IS NULL LIMIT 1${forShare ? ' FOR SHARE OF s' : ''}`,
    [caseId],
  );
  return rows[0];
}

/** Whether `sub` is bound to a specialist of the directory other than the one with `npi`. */
async function boundToAnotherSpecialist(db: Queryable, sub: string, npi: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM specialists WHERE user_sub = $1 AND npi <> $2 LIMIT 1', [sub, npi]);
  return rows.length > 0;
}

/**
 * The author of the opinion for this request.
 *
 * `forShare` (in a transaction holding the case row lock: saving, signing) locks the assigned
 * specialist's row `FOR SHARE` until that transaction ends, case then specialist as assignments and
 * deactivation releases lock. A deactivation (`PATCH {active: false}`) committed before is seen here
 * and refused; one sent meanwhile waits for this commit, then releases the case if it is still open.
 * Without the lock, a deactivation committed while a report was rendered would have it signed under
 * the deactivated specialist's name and NPI, and the release would then skip the signed case.
 * @throws HttpProblem 409 when the assigned specialist is inactive; 403 when the case is assigned to
 *   a specialist bound to another token subject, or to an unbound specialist while the token's
 *   subject is bound to another one
 */
export async function resolveSpecialist(
  db: Queryable,
  caseId: string,
  principal: Principal,
  given: { name: string; npi?: string } | undefined,
  forShare = false,
): Promise<SpecialistIdentity> {
  const assigned = await assignedSpecialist(db, caseId, forShare);
  if (assigned) {
    if (!assigned.active) {
      throw conflict(`${displayName(assigned.name) ?? 'The assigned specialist'} was deactivated in the directory: no opinion is written or signed under their name. ${CASE_WAITS_FOR_SPECIALIST}`, {
        field: 'specialist',
      });
    }
    if (assigned.user_sub && assigned.user_sub !== principal.sub) {
      throw new HttpProblem(403, 'Forbidden', 'The case is assigned to another specialist; only they write and sign its opinion.');
    }
    // Assigned to a specialist with no bound subject: a token bound to another specialist of the
    // directory is that other doctor, who must not write (and sign) under this one's name and NPI.
    if (!assigned.user_sub && (await boundToAnotherSpecialist(db, principal.sub, assigned.npi))) {
      throw new HttpProblem(403, 'Forbidden', 'The case is assigned to another specialist of the directory; only they write and sign its opinion.');
    }
    const humanName = nameParts(assigned.name);
    return { sub: principal.sub, name: displayName(assigned.name) ?? given?.name ?? principal.sub, npi: assigned.npi, ...(humanName ? { humanName } : {}) };
  }
  return { sub: principal.sub, name: given?.name ?? principal.sub, ...(given?.npi ? { npi: given.npi } : {}) };
}
