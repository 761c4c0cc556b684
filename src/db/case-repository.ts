import type { Queryable } from './database';

/** A stored case row, as the service reads it. */
export interface CaseRecord {
  readonly id: string;
  readonly status: string;
  readonly intake: unknown;
  readonly eligibility: unknown;
  readonly quote: unknown;
  readonly addonsOffered: string[];
  readonly addonsApproved: string[];
  readonly recordsCompleteAt: Date | null;
  readonly slaTargetDue: Date | null;
  readonly slaLimitDue: Date | null;
  /** When the SLA clock stopped (the case left the statuses it runs in); null while it runs. */
  readonly slaStoppedAt: Date | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly revision: number;
}

export interface CaseEventRecord {
  readonly id: number;
  readonly at: Date;
  readonly type: string;
  readonly actorSub: string;
  readonly actorRole: string | null;
  readonly fromStatus: string | null;
  readonly toStatus: string | null;
  readonly reason: string | null;
  readonly data: Record<string, unknown>;
}

export interface PauseRecord {
  readonly startedAt: Date;
  readonly endedAt: Date | null;
  readonly reason: string | null;
}

export interface NewCaseEvent {
  readonly caseId: string;
  readonly type: string;
  readonly actorSub: string;
  readonly actorRole?: string;
  readonly fromStatus?: string;
  readonly toStatus?: string;
  readonly reason?: string;
  readonly data?: Record<string, unknown>;
  readonly at?: Date;
}

interface CaseRow {
  id: string;
  status: string;
  intake: unknown;
  eligibility: unknown;
  quote: unknown;
  addons_offered: string[];
  addons_approved: string[];
  records_complete_at: Date | null;
  sla_target_due: Date | null;
  sla_limit_due: Date | null;
  sla_stopped_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  revision: number;
}

const CASE_COLUMNS = `id, status, intake, eligibility, quote, addons_offered, addons_approved, records_complete_at,
  sla_target_due, sla_limit_due, sla_stopped_at, created_by, created_at, updated_at, revision`;

function toCase(row: CaseRow): CaseRecord {
  return {
    id: row.id,
    status: row.status,
    intake: row.intake,
    eligibility: row.eligibility,
    quote: row.quote,
    addonsOffered: row.addons_offered,
    addonsApproved: row.addons_approved,
    recordsCompleteAt: row.records_complete_at,
    slaTargetDue: row.sla_target_due,
    slaLimitDue: row.sla_limit_due,
    slaStoppedAt: row.sla_stopped_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    revision: row.revision,
  };
}

export async function insertCase(
  db: Queryable,
  c: { id: string; status: string; intake: unknown; eligibility: unknown; quote: unknown; createdBy: string; at: Date },
): Promise<void> {
  await db.query(
    `INSERT INTO cases (id, status, intake, eligibility, quote, created_by, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
    [c.id, c.status, JSON.stringify(c.intake), JSON.stringify(c.eligibility), JSON.stringify(c.quote), c.createdBy, c.at],
  );
}

/**
 * The lock a transaction takes on a case row to serialise its changes of the case (transitions,
 * pulls started, bundle versions, uploads). `FOR NO KEY UPDATE`, not `FOR UPDATE`: it conflicts with
 * every other writer of the row all the same, but not with the `FOR KEY SHARE` lock PostgreSQL takes
 * on the case for each row inserted that references it (a pull page's `raw_resources`, a timeline
 * event). Under `FOR UPDATE`, cancelling a case (case row, then its pulls' tasks) deadlocked with a
 * pull committing a page (its task, then a `raw_resources` row referencing the case).
 * @see https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-ROWS
 */
export const CASE_ROW_LOCK = 'FOR NO KEY UPDATE';

export async function findCase(db: Queryable, id: string, forUpdate = false): Promise<CaseRecord | undefined> {
  const { rows } = await db.query<CaseRow>(
    `SELECT ${CASE_COLUMNS} FROM cases WHERE id = $1${forUpdate ? ` ${CASE_ROW_LOCK}` : ''}`,
    [id],
  );
  return rows[0] ? toCase(rows[0]) : undefined;
}

export interface CaseListFilter {
  readonly status?: readonly string[];
  /** Only cases whose target (or limit) due date has passed and that are not paused. */
  readonly overdue?: 'target' | 'limit';
  readonly notOverdue?: boolean;
  /** Only cases currently assigned to the specialist the directory binds to this token subject (`userSub`). */
  readonly assignedToSubject?: string;
  /** Only cases currently assigned to this specialist (directory id). */
  readonly assignedToSpecialist?: string;
  /** `sla`: the nearest SLA target first (cases without one last), else the newest first. */
  readonly order?: 'newest' | 'sla';
  readonly now: Date;
  readonly limit: number;
  readonly offset: number;
}

/** Statuses in which the SLA clock runs. */
export const SLA_RUNNING_STATUSES = ['records_complete', 'assigned', 'in_review'] as const;

/**
 * Statuses in which a due date passed makes the case overdue: the clock runs, or is paused awaiting
 * information after the date had passed (a pause keeps a due date already missed, see transitionCase).
 */
export const SLA_OVERDUE_STATUSES = [...SLA_RUNNING_STATUSES, 'awaiting_information'] as const;

export async function listCases(db: Queryable, filter: CaseListFilter): Promise<{ cases: CaseRecord[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.status && filter.status.length > 0) where.push(`status = ANY(${param(filter.status)}::text[])`);
  if (filter.overdue) {
    const column = filter.overdue === 'limit' ? 'sla_limit_due' : 'sla_target_due';
    where.push(`status = ANY(${param(SLA_OVERDUE_STATUSES)}::text[]) AND ${column} < ${param(filter.now)}`);
  }
  if (filter.notOverdue) {
    where.push(
      `NOT (status = ANY(${param(SLA_OVERDUE_STATUSES)}::text[]) AND sla_target_due IS NOT NULL AND sla_target_due < ${param(filter.now)})`,
    );
  }
  if (filter.assignedToSubject !== undefined) {
    where.push(
      `id IN (SELECT a.case_id FROM assignments a JOIN specialists s ON s.id = a.specialist_id WHERE a.ended_at IS NULL AND s.user_sub = ${param(filter.assignedToSubject)})`,
    );
  }
  if (filter.assignedToSpecialist !== undefined) {
    where.push(`id IN (SELECT case_id FROM assignments WHERE ended_at IS NULL AND specialist_id = ${param(filter.assignedToSpecialist)}::uuid)`);
  }
  const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const countParams = [...params];
  const order = filter.order === 'sla' ? 'sla_target_due ASC NULLS LAST, created_at, id' : 'created_at DESC, id';
  const { rows } = await db.query<CaseRow>(
    `SELECT ${CASE_COLUMNS} FROM cases ${whereSql} ORDER BY ${order} LIMIT ${param(filter.limit)} OFFSET ${param(filter.offset)}`,
    params,
  );
  const total = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM cases ${whereSql}`, countParams);
  return { cases: rows.map(toCase), total: total.rows[0]?.n ?? 0 };
}

export async function updateCaseStatus(
  db: Queryable,
  id: string,
  expectedRevision: number,
  changes: {
    status: string;
    at: Date;
    recordsCompleteAt?: Date | null;
    slaTargetDue?: Date | null;
    slaLimitDue?: Date | null;
    slaStoppedAt?: Date | null;
  },
): Promise<boolean> {
  const result = await db.query(
    `UPDATE cases SET status = $3, updated_at = $4, revision = revision + 1,
       records_complete_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE records_complete_at END,
       sla_target_due = CASE WHEN $7::boolean THEN $8::timestamptz ELSE sla_target_due END,
       sla_limit_due = CASE WHEN $7::boolean THEN $9::timestamptz ELSE sla_limit_due END,
       sla_stopped_at = CASE WHEN $10::boolean THEN $11::timestamptz ELSE sla_stopped_at END
     WHERE id = $1 AND revision = $2`,
    [
      id,
      expectedRevision,
      changes.status,
      changes.at,
      changes.recordsCompleteAt !== undefined,
      changes.recordsCompleteAt ?? null,
      changes.slaTargetDue !== undefined,
      changes.slaTargetDue ?? null,
      changes.slaLimitDue ?? null,
      changes.slaStoppedAt !== undefined,
      changes.slaStoppedAt ?? null,
    ],
  );
  return result.rowCount === 1;
}

export async function insertCaseEvent(db: Queryable, e: NewCaseEvent): Promise<void> {
  await db.query(
    `INSERT INTO case_events (case_id, at, type, actor_sub, actor_role, from_status, to_status, reason, data)
     VALUES ($1, COALESCE($2, now()), $3, $4, $5, $6, $7, $8, $9)`,
    [
      e.caseId,
      e.at ?? null,
      e.type,
      e.actorSub,
      e.actorRole ?? null,
      e.fromStatus ?? null,
      e.toStatus ?? null,
      e.reason ?? null,
      JSON.stringify(e.data ?? {}),
    ],
  );
}

export async function listCaseEvents(db: Queryable, caseId: string): Promise<CaseEventRecord[]> {
  const { rows } = await db.query<{
    id: number;
    at: Date;
    type: string;
    actor_sub: string;
    actor_role: string | null;
    from_status: string | null;
    to_status: string | null;
    reason: string | null;
    data: Record<string, unknown>;
  }>(
    `SELECT id, at, type, actor_sub, actor_role, from_status, to_status, reason, data
     FROM case_events WHERE case_id = $1 ORDER BY id`,
    [caseId],
  );
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    type: r.type,
    actorSub: r.actor_sub,
    actorRole: r.actor_role,
    fromStatus: r.from_status,
    toStatus: r.to_status,
    reason: r.reason,
    data: r.data,
  }));
}

export async function listPauses(db: Queryable, caseId: string): Promise<PauseRecord[]> {
  const { rows } = await db.query<{ started_at: Date; ended_at: Date | null; reason: string | null }>(
    'SELECT started_at, ended_at, reason FROM sla_pauses WHERE case_id = $1 ORDER BY started_at',
    [caseId],
  );
  return rows.map((r) => ({ startedAt: r.started_at, endedAt: r.ended_at, reason: r.reason }));
}

/** The SLA pauses of several cases in one query, by case id (each in start order). */
export async function listPausesOfCases(db: Queryable, caseIds: readonly string[]): Promise<Map<string, PauseRecord[]>> {
  const byCase = new Map<string, PauseRecord[]>(caseIds.map((id) => [id, []]));
  if (caseIds.length === 0) return byCase;
  const { rows } = await db.query<{ case_id: string; started_at: Date; ended_at: Date | null; reason: string | null }>(
    'SELECT case_id, started_at, ended_at, reason FROM sla_pauses WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, started_at',
    [caseIds],
  );
  for (const r of rows) byCase.get(r.case_id)?.push({ startedAt: r.started_at, endedAt: r.ended_at, reason: r.reason });
  return byCase;
}

export async function openPause(db: Queryable, caseId: string, at: Date, reason: string | null): Promise<void> {
  await db.query(
    `INSERT INTO sla_pauses (case_id, started_at, reason) VALUES ($1, $2, $3)
     ON CONFLICT (case_id) WHERE ended_at IS NULL DO NOTHING`,
    [caseId, at, reason],
  );
}

export async function closePause(db: Queryable, caseId: string, at: Date): Promise<void> {
  // Never before it started: two requests each read their clock before the case row lock, so the one
  // that locks second may close a pause the first opened a few milliseconds "later" (a pause ending
  // before it starts made the SLA computation throw, and the cancel a 500).
  await db.query('UPDATE sla_pauses SET ended_at = GREATEST(started_at, $2) WHERE case_id = $1 AND ended_at IS NULL', [caseId, at]);
}

/** Whether the case's timeline has an event of `type` whose `data[field]` is `value` (events written once). */
/**
 * When the case last entered `status` (its latest transition there), from the timeline: unlike the
 * row's `updated_at`, no later change of another kind (an add-on, a quote) moves it.
 */
export async function statusEnteredAt(db: Queryable, caseId: string, status: string): Promise<Date | undefined> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT max(at) AS at FROM case_events WHERE case_id = $1 AND type = 'transition' AND to_status = $2`,
    [caseId, status],
  );
  return rows[0]?.at ?? undefined;
}

export async function hasCaseEvent(db: Queryable, caseId: string, type: string, field: string, value: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM case_events WHERE case_id = $1 AND type = $2 AND data->>$3 = $4 LIMIT 1', [caseId, type, field, value]);
  return rows.length > 0;
}

/** An open case that may be about the same child (see {@link findPossibleDuplicates}). */
export interface PossibleDuplicate {
  readonly id: string;
  readonly status: string;
  readonly createdAt: string;
}

/**
 * Open cases (not closed, cancelled or ineligible) whose child has the same family name, first given
 * name (both case-insensitive) and birth date as `patient`, newest first, at most `limit`, `excludeId`
 * left out: a case manager entering the same request twice sees the first one.
 */
export async function findPossibleDuplicates(
  db: Queryable,
  patient: { readonly family: string; readonly given: readonly string[]; readonly birthDate: string },
  excludeId: string,
  limit = 5,
): Promise<PossibleDuplicate[]> {
  const { rows } = await db.query<{ id: string; status: string; created_at: Date }>(
    `SELECT id, status, created_at FROM cases
     WHERE status NOT IN ('closed', 'cancelled', 'ineligible') AND id <> $4
       AND lower(intake->'patient'->'name'->>'family') = lower($1)
       AND lower(coalesce(intake->'patient'->'name'->'given'->>0, '')) = lower($2)
       AND intake->'patient'->>'birthDate' = $3
     ORDER BY created_at DESC LIMIT $5`,
    [patient.family, patient.given[0] ?? '', patient.birthDate, excludeId, limit],
  );
  return rows.map((r) => ({ id: r.id, status: r.status, createdAt: r.created_at.toISOString() }));
}
