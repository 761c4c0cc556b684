/**
 * The access audit (`audit_log`): one row per authenticated `/api` request — who, roles, method,
 * route pattern, case id (or, for a list, the ids of the cases it disclosed: {@link recordDisclosedCases}),
 * the answer's status and the record or report version it served — no PHI.
 * HIPAA's audit controls and accounting of access to a patient's record.
 *
 * A request that reaches its route's handler is put on record BEFORE the handler runs
 * ({@link auditBeforeAnswer}: the row, without a status, is committed first) and its row gets the
 * answer's status once the answer is sent ({@link auditTrail}). So a crash, or a failed write, between
 * answering and logging the answer still leaves the access on record (its answer "not recorded"),
 * and a request whose row cannot be written is answered 503 without running its handler: nothing is
 * disclosed or changed that the audit does not hold. A request refused before its handler
 * (authentication, role, case access, format, body) discloses nothing: its row is written once its
 * refusal is sent.
 * @see https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312 (§164.312(b) audit controls)
 * @packageDocumentation
 */
import type { NextFunction, Request, Response } from 'express';
import type { Database, Queryable } from '../db/database';
import { errorFields, logger } from '../log';
import { HttpProblem } from './problem';

/** What the audit knows of a request between its two writes (`res.locals.audit`). */
interface AuditState {
  readonly caseId: string | null;
  readonly route: string;
  /** The row written before the handler ran (its insert, while under way). */
  opened?: Promise<string | undefined>;
  /** The answer was logged (once per request). */
  answered: boolean;
}

/** A case id as PostgreSQL takes it (uuid input ignores case), else NULL. */
const CASE_ID_SQL = `CASE WHEN $6::text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $6::uuid END`;

function stateOf(res: Response): AuditState | undefined {
  return (res.locals as { audit?: AuditState }).audit;
}

/**
 * The record version an answer announced in `header` (the bundle or report it served), if any; a
 * 304 counts: the client showed it holds that version and was told it is current.
 */
function servedVersion(res: Response, header: string): number | null {
  const value = Number(res.getHeader(header));
  return (res.statusCode < 300 || res.statusCode === 304) && Number.isInteger(value) && value > 0 ? value : null;
}

/** Inserts a row for the request (`status` null: before its answer); its id. */
async function insertRow(db: Database, req: Request, state: AuditState, status: number | null, bundleVersion: number | null, reportVersion: number | null): Promise<string | undefined> {
  const principal = req.principal;
  if (!principal) return undefined;
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO audit_log (request_id, actor_sub, actor_roles, method, route, case_id, status, bundle_version, report_version)
     VALUES ($1, $2, $3, $4, $5, ${CASE_ID_SQL}, $7, $8, $9) RETURNING id`,
    [req.requestId ?? '', principal.sub, principal.roles, req.method, state.route, state.caseId, status, bundleVersion, reportVersion],
  );
  return rows[0]?.id;
}

/** Logs the answer: on the row written before the handler, or as a new row for a request refused before it. */
async function logAnswer(db: Database, req: Request, res: Response, state: AuditState): Promise<void> {
  const bundleVersion = servedVersion(res, 'X-Bundle-Version');
  const reportVersion = servedVersion(res, 'X-Report-Version');
  const opened = await state.opened?.catch(() => undefined);
  if (opened === undefined) {
    await insertRow(db, req, state, res.statusCode, bundleVersion, reportVersion);
    return;
  }
  await db.query('UPDATE audit_log SET status = $2, bundle_version = $3, report_version = $4 WHERE id = $1', [opened, res.statusCode, bundleVersion, reportVersion]);
}

/** Whether a route pattern is one of a case's (`/api/cases/:id` and below). */
function isCaseRoute(route: string): boolean {
  return route === '/api/cases/:id' || route.startsWith('/api/cases/:id/');
}

/**
 * First in an authenticated route's chain (before authentication, so that a valid token refused by
 * it — an upload token of another case — is logged against the case it tried): takes the request's
 * case id and route pattern, and logs its answer once it is sent (`finish`) or ends without being
 * sent whole (`close` alone: the client went away mid-download, a streamed answer failed — the bytes
 * that left were disclosed all the same).
 */
export function auditTrail(db: Database) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // Read while the route's params are set: once an error has gone to the app's error handler
    // (a refusal, a 404), express has put them back, and the row would lose its case. A case id in
    // upper case opens the same case (uuid input ignores case), so it is logged against it too. The
    // route is told by its pattern, not the request's path: express matches paths ignoring case, so
    // `/API/CASES/{id}` runs the case route and must be on the case's log as well.
    const route = `${req.baseUrl}${(req as Request & { route?: { path?: string } }).route?.path ?? ''}`;
    const caseId = typeof req.params.id === 'string' && isCaseRoute(route) ? req.params.id : null;
    const state: AuditState = { caseId, route, answered: false };
    (res.locals as { audit?: AuditState }).audit = state;
    const answered = (): void => {
      if (state.answered || !req.principal) return;
      state.answered = true;
      logAnswer(db, req, res, state).catch((err: unknown) => logger.error('audit write failed', errorFields(err)));
    };
    res.once('finish', answered);
    res.once('close', answered);
    next();
  };
}

/**
 * Last before the route's handler: commits the request's audit row (no status yet) and only then
 * lets the handler run; a row that cannot be written is a 503 (see the module comment).
 */
export function auditBeforeAnswer(db: Database) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const state = stateOf(res);
    // Gone before its handler (the client closed the connection): its row is written as it ended.
    if (!state || state.answered) {
      next();
      return;
    }
    const opened = insertRow(db, req, state, null, null, null);
    state.opened = opened;
    opened.then(
      () => next(),
      (err: unknown) => {
        logger.error('audit write failed: request refused', errorFields(err));
        next(new HttpProblem(503, 'Service Unavailable', 'The access audit could not record this request, so it was not carried out; try again shortly.'));
      },
    );
  };
}

/**
 * Records on the request's audit row the cases its answer is about to disclose, for an answer about
 * several cases (a case list shows each child's name and birth date) whose row names none: each
 * case's access log (`GET /api/cases/:id/access-log`) then shows the read. Ids only. The handler
 * awaits it before answering, as the row itself is written before the handler runs: a list whose
 * cases cannot be put on record is not answered (the error goes to the app's error handler).
 * @see https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312 (§164.312(b) audit controls)
 * @throws Error when the request has no audit row (a route outside {@link auditBeforeAnswer}), or the write fails
 */
export async function recordDisclosedCases(db: Queryable, res: Response, caseIds: readonly string[]): Promise<void> {
  if (caseIds.length === 0) return;
  const opened = await stateOf(res)?.opened;
  if (opened === undefined) throw new Error('no audit row for this request: the cases it would disclose cannot be recorded');
  await db.query('UPDATE audit_log SET disclosed_case_ids = $2::uuid[] WHERE id = $1', [opened, caseIds]);
}
