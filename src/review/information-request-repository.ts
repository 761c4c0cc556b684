/**
 * Rows of `information_requests` (migration 006).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';

/** What the specialist asks for. */
export const INFORMATION_REQUEST_KINDS = ['re-pull', 'family-upload', 'expert-input'] as const;
/** A request kind. */
export type InformationRequestKind = (typeof INFORMATION_REQUEST_KINDS)[number];

/** A specialist's request for more information. */
export interface InformationRequestRecord {
  readonly id: string;
  readonly caseId: string;
  readonly kind: InformationRequestKind;
  /** `withdrawn`: its case ended while it was open (migration 036). */
  readonly state: 'open' | 'answered' | 'withdrawn';
  readonly message: string | null;
  readonly resourceTypes: string[] | null;
  readonly since: Date | null;
  readonly pullId: string | null;
  readonly addOn: string | null;
  readonly requestedBy: string;
  readonly requestedAt: Date;
  readonly answeredBy: string | null;
  readonly answeredAt: Date | null;
  readonly answer: string | null;
}

interface Row {
  id: string;
  case_id: string;
  kind: InformationRequestKind;
  state: 'open' | 'answered' | 'withdrawn';
  message: string | null;
  resource_types: string[] | null;
  since: Date | null;
  pull_id: string | null;
  add_on: string | null;
  requested_by: string;
  requested_at: Date;
  answered_by: string | null;
  answered_at: Date | null;
  answer: string | null;
}

const COLUMNS = `id, case_id, kind, state, message, resource_types, since, pull_id, add_on, requested_by, requested_at,
  answered_by, answered_at, answer`;

const toRecord = (r: Row): InformationRequestRecord => ({
  id: r.id,
  caseId: r.case_id,
  kind: r.kind,
  state: r.state,
  message: r.message,
  resourceTypes: r.resource_types,
  since: r.since,
  pullId: r.pull_id,
  addOn: r.add_on,
  requestedBy: r.requested_by,
  requestedAt: r.requested_at,
  answeredBy: r.answered_by,
  answeredAt: r.answered_at,
  answer: r.answer,
});

/** Records an open request. */
export async function insertInformationRequest(
  db: Queryable,
  r: Pick<InformationRequestRecord, 'id' | 'caseId' | 'kind' | 'message' | 'resourceTypes' | 'since' | 'pullId' | 'addOn' | 'requestedBy' | 'requestedAt'>,
): Promise<void> {
  await db.query(
    `INSERT INTO information_requests (id, case_id, kind, state, message, resource_types, since, pull_id, add_on, requested_by, requested_at)
     VALUES ($1, $2, $3, 'open', $4, $5::text[], $6, $7, $8, $9, $10)`,
    [r.id, r.caseId, r.kind, r.message, r.resourceTypes, r.since, r.pullId, r.addOn, r.requestedBy, r.requestedAt],
  );
}

/** One request. */
export async function findInformationRequest(db: Queryable, id: string): Promise<InformationRequestRecord | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM information_requests WHERE id = $1`, [id]);
  return rows[0] ? toRecord(rows[0]) : undefined;
}

/** The requests of a case, oldest first. */
export async function listInformationRequests(db: Queryable, caseId: string): Promise<InformationRequestRecord[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM information_requests WHERE case_id = $1 ORDER BY requested_at, id`, [caseId]);
  return rows.map(toRecord);
}

/** Open requests matching a filter: of a case (and kind / add-on), or waiting for a pull. */
export async function openInformationRequests(
  db: Queryable,
  filter: { caseId?: string; pullId?: string; kind?: InformationRequestKind; addOn?: string },
): Promise<InformationRequestRecord[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM information_requests
     WHERE state = 'open' AND ($1::uuid IS NULL OR case_id = $1) AND ($2::uuid IS NULL OR pull_id = $2)
       AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR add_on = $4)
     ORDER BY requested_at, id`,
    [filter.caseId ?? null, filter.pullId ?? null, filter.kind ?? null, filter.addOn ?? null],
  );
  return rows.map(toRecord);
}

/** Marks an open request answered; false when it was answered already. */
export async function markAnswered(db: Queryable, id: string, answer: { by: string; at: Date; text: string }): Promise<boolean> {
  const result = await db.query(
    `UPDATE information_requests SET state = 'answered', answered_by = $2, answered_at = $3, answer = $4 WHERE id = $1 AND state = 'open'`,
    [id, answer.by, answer.at, answer.text],
  );
  return result.rowCount === 1;
}

/**
 * Withdraws the open requests of a case that ends (cancelled, closed, found ineligible): nothing more
 * is asked of the family, and none shows as open for good. `reason` is kept as the answer.
 * @returns the withdrawn requests' ids
 */
export async function withdrawOpenRequests(db: Queryable, caseId: string, by: string, at: Date, reason: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE information_requests SET state = 'withdrawn', answered_by = $2, answered_at = $3, answer = $4
      WHERE case_id = $1 AND state = 'open' RETURNING id`,
    [caseId, by, at, reason],
  );
  return rows.map((r) => r.id);
}
