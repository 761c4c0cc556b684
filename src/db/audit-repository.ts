import type { Queryable } from './database';

/**
 * One authenticated API request that named the case, or whose answer disclosed it among others (a
 * case list: its route then says so; see `auditTrail` and `recordDisclosedCases` in src/http/audit-trail.ts).
 */
export interface AccessLogEntry {
  readonly at: string;
  readonly actor: string;
  readonly roles: readonly string[];
  readonly method: string;
  /** The route pattern (`/api/cases/:id/bundle`), never the concrete URL or query. */
  readonly route: string;
  /** The answer's HTTP status; absent when it was never recorded (then `answerRecorded` is false). */
  readonly status?: number;
  /**
   * `false`: the request was put on record before it was answered, and its answer never was (the
   * service stopped, or the write failed, after it began answering). Absent otherwise.
   */
  readonly answerRecorded?: false;
  readonly requestId: string;
  /** The bundle version the answer served (the case record opened), when it served one. */
  readonly bundleVersion?: number;
  /** The signed report version the answer served (its PDF), when it served one. */
  readonly reportVersion?: number;
}

/**
 * How long a request on record without its answer is taken to be still answering (left out of the
 * access log meanwhile: an answer is logged within milliseconds of being sent); older, it is shown
 * with its answer not recorded. A download streamed for longer shows as not recorded until it ends.
 */
export const ANSWER_PENDING_INTERVAL = '5 minutes';

/**
 * Rows of the access log: the requests about the case or whose answer disclosed it (a list, migration
 * 041), answered, or on record without an answer for longer than {@link ANSWER_PENDING_INTERVAL}.
 */
const SHOWN = `(case_id = $1 OR disclosed_case_ids @> ARRAY[$1::uuid]) AND (status IS NOT NULL OR at < now() - interval '${ANSWER_PENDING_INTERVAL}')`;

/**
 * Who accessed a case, newest first, from the access audit (`audit_log`): ids, roles, routes and
 * answers only, no PHI. HIPAA's accounting of access to a patient's record.
 */
export async function caseAccessLog(db: Queryable, caseId: string, page: { limit: number; offset: number }): Promise<{ total: number; items: AccessLogEntry[] }> {
  // One statement, one snapshot: the total and the page agree while requests keep being logged
  // (the page is empty past the end: one row of NULLs then carries the total).
  const { rows } = await db.query<{
    total: number; at: Date | null; actor_sub: string; actor_roles: string[]; method: string; route: string; status: number | null; request_id: string;
    bundle_version: number | null; report_version: number | null;
  }>(
    `SELECT t.total, p.* FROM (SELECT count(*)::int AS total FROM audit_log WHERE ${SHOWN}) t
     LEFT JOIN LATERAL (
       SELECT at, actor_sub, actor_roles, method, route, status, request_id, bundle_version, report_version, id FROM audit_log
       WHERE ${SHOWN} ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3
     ) p ON true
     ORDER BY p.at DESC NULLS LAST, p.id DESC`,
    [caseId, page.limit, page.offset],
  );
  const entries = rows.filter((r): r is typeof r & { at: Date } => r.at !== null);
  return {
    total: rows[0]?.total ?? 0,
    items: entries.map((r) => ({
      at: r.at.toISOString(),
      actor: r.actor_sub,
      roles: r.actor_roles,
      method: r.method,
      route: r.route,
      ...(r.status !== null ? { status: r.status } : { answerRecorded: false as const }),
      requestId: r.request_id,
      ...(r.bundle_version !== null ? { bundleVersion: r.bundle_version } : {}),
      ...(r.report_version !== null ? { reportVersion: r.report_version } : {}),
    })),
  };
}
