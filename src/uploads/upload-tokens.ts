/**
 * Per-case upload tokens: what a family portal presents to `POST`/`GET /api/cases/:id/uploads`
 * instead of a staff JWT. A case manager issues one for one case; it expires after
 * `UPLOAD_TOKEN_TTL_SECONDS` and opens nothing but that case's upload routes.
 *
 * Opaque random tokens (`sobu_` + 32 random bytes, base64url), not JWTs: the service does not hold
 * the identity provider's signing key in production, and an opaque token can be looked up (and
 * revoked by deleting its row). Only the SHA-256 of a token is stored.
 * @packageDocumentation
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { insertCaseEvent } from '../db/case-repository';
import type { Database, Queryable } from '../db/database';
import { unauthorized, type Principal, type ScopedTokenAuth } from '../http/auth';
import { HttpProblem } from '../http/problem';
import { canonicalUuid } from '../http/routes/params';
import { ENDED_WITHOUT_REPORT } from '../cases/lifecycle';

/** Prefix of every upload token (tells it apart from a JWT without any I/O). */
export const UPLOAD_TOKEN_PREFIX = 'sobu_';
/** The `Principal.scope` of an upload token for `caseId`. */
export const uploadScope = (caseId: string): string => `case-upload:${caseId}`;

const TOKEN_SHAPE = /^sobu_[A-Za-z0-9_-]{43}$/;
const sha256 = (token: string): string => createHash('sha256').update(token).digest('hex');

/** A freshly issued token: the only time the token itself is seen. */
export interface IssuedUploadToken {
  readonly token: string;
  readonly tokenId: string;
  readonly caseId: string;
  readonly expiresAt: string;
}

/**
 * Issues an upload token for one case, unless the case ended without a report (`ENDED_WITHOUT_REPORT`:
 * the transition into it revoked the case's tokens, so a token issued afterwards would reopen the
 * portal of a case that ended; a closed case still gets one, the family may ask to transfer care). The case row is read `FOR SHARE` in the insert itself, so an
 * issue racing the cancelling transaction (which holds the case row lock while it deletes the
 * tokens) waits for it and then sees the case cancelled: no token outlives the cancellation.
 * @returns `undefined` when no case `caseId` exists that may have a token
 */
export async function issueUploadToken(db: Queryable, caseId: string, createdBy: string, ttlSeconds: number, now = new Date()): Promise<IssuedUploadToken | undefined> {
  const token = `${UPLOAD_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const tokenId = randomUUID();
  const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
  const { rowCount } = await db.query(
    `INSERT INTO upload_tokens (id, case_id, token_sha256, created_by, created_at, expires_at)
     SELECT $1, c.id, $3, $4, $5, $6 FROM (SELECT id FROM cases WHERE id = $2 AND NOT (status = ANY($7::text[])) FOR SHARE) c`,
    [tokenId, caseId, sha256(token), createdBy, now, expiresAt, ENDED_WITHOUT_REPORT],
  );
  if (!rowCount) return undefined;
  return { token, tokenId, caseId, expiresAt: expiresAt.toISOString() };
}

/** An issued token as the case manager sees it later: never the token itself. */
export interface UploadTokenView {
  readonly tokenId: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** Not expired (a revoked token is gone). */
  readonly active: boolean;
}

/** The case's upload tokens not revoked, newest first (expired ones too, marked inactive). */
export async function listUploadTokens(db: Queryable, caseId: string, now = new Date()): Promise<UploadTokenView[]> {
  const { rows } = await db.query<{ id: string; created_by: string; created_at: Date; expires_at: Date }>(
    'SELECT id, created_by, created_at, expires_at FROM upload_tokens WHERE case_id = $1 ORDER BY created_at DESC, id',
    [caseId],
  );
  return rows.map((r) => ({
    tokenId: r.id,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    active: r.expires_at.getTime() > now.getTime(),
  }));
}

/**
 * Revokes a token at once (a leaked link, a portal session to end): its row is deleted, so the next
 * request with it is a 401; the timeline records who revoked which token.
 * @returns false when the case has no such token (revoked already, or another case's)
 */
export async function revokeUploadToken(db: Database, caseId: string, tokenId: string, actor: { sub: string; role?: string }): Promise<boolean> {
  return db.transaction(async (tx) => {
    const { rowCount } = await tx.query('DELETE FROM upload_tokens WHERE id = $1 AND case_id = $2', [tokenId, caseId]);
    if (!rowCount) return false;
    await insertCaseEvent(tx, { caseId, type: 'upload_token_revoked', actorSub: actor.sub, ...(actor.role ? { actorRole: actor.role } : {}), data: { tokenId } });
    return true;
  });
}

/** Revokes every upload token of the case (it was cancelled); the ids revoked, sorted. */
export async function revokeCaseUploadTokens(db: Queryable, caseId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>('DELETE FROM upload_tokens WHERE case_id = $1 RETURNING id', [caseId]);
  return rows.map((r) => r.id).sort();
}

/** How an upload token's principal is named: `upload-token:<token id>`. */
const UPLOAD_TOKEN_SUBJECT = 'upload-token:';

/**
 * The {@link ScopedTokenAuth} of the upload routes: an unknown or expired token is a 401, a token of
 * another case a 403; a valid one gives the principal `upload-token:<id>` with scope
 * {@link uploadScope} and no role.
 */
export function uploadTokenAuth(db: () => Queryable): ScopedTokenAuth {
  return {
    recognizes: (token) => token.startsWith(UPLOAD_TOKEN_PREFIX),
    async verify(token: string, req: Request): Promise<Principal> {
      if (!TOKEN_SHAPE.test(token)) throw unauthorized('The upload token is malformed.', true);
      const { rows } = await db().query<{ id: string; case_id: string; expires_at: Date }>(
        'SELECT id, case_id, expires_at FROM upload_tokens WHERE token_sha256 = $1',
        [sha256(token)],
      );
      const row = rows[0];
      if (!row || row.expires_at.getTime() <= Date.now()) throw unauthorized('The upload token is unknown or expired; ask the case manager for a new one.', true);
      // Read before the route parses its params: made canonical as they will be (a uuid's case means nothing).
      const caseId = typeof req.params.id === 'string' ? canonicalUuid(req.params.id) : '';
      const principal: Principal = { sub: `${UPLOAD_TOKEN_SUBJECT}${row.id}`, roles: [], scope: uploadScope(row.case_id) };
      if (row.case_id !== caseId) {
        // A valid token tried on another case: that case's access log records the refusal, by this token.
        req.principal = principal;
        throw new HttpProblem(403, 'Forbidden', 'This upload token is for another case.');
      }
      return principal;
    },
  };
}

/**
 * Inside the transaction that records an upload: whether the upload token the request was
 * authenticated with still exists, its row read `FOR SHARE` (a revocation racing the recording waits
 * for it, or is waited for and then seen). A token is checked when a request starts; an upload may
 * stream for hours, and a token revoked meanwhile (a leaked link) must not have it kept.
 * @returns true for a principal that is no upload token (staff JWT), or whose token still exists
 */
export async function uploadTokenStillValid(db: Queryable, principal: Principal, caseId: string): Promise<boolean> {
  if (principal.scope === undefined) return true;
  const tokenId = principal.sub.startsWith(UPLOAD_TOKEN_SUBJECT) ? principal.sub.slice(UPLOAD_TOKEN_SUBJECT.length) : '';
  if (!/^[0-9a-f-]{36}$/i.test(tokenId)) return false;
  const { rows } = await db.query<{ id: string }>('SELECT id FROM upload_tokens WHERE id = $1 AND case_id = $2 FOR SHARE', [tokenId, caseId]);
  return rows.length > 0;
}
