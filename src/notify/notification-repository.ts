import type { Queryable } from '../db/database';

/** A case-manager notification, as stored. */
export interface NotificationRow {
  readonly id: number;
  readonly type: string;
  readonly caseId: string | null;
  readonly message: string;
  readonly data: Record<string, unknown>;
  readonly createdAt: Date;
  readonly readAt: Date | null;
  /** Who marked it read (token subject); null while unread, or when read before it was recorded. */
  readonly readBy: string | null;
}

interface Db {
  id: number | string;
  type: string;
  case_id: string | null;
  message: string;
  data: Record<string, unknown>;
  created_at: Date;
  read_at: Date | null;
  read_by: string | null;
}

const toRow = (r: Db): NotificationRow => ({
  id: Number(r.id),
  type: r.type,
  caseId: r.case_id,
  message: r.message,
  data: r.data,
  createdAt: r.created_at,
  readAt: r.read_at,
  readBy: r.read_by,
});

/** One notification per outbox event (a repeat does nothing); `outboxId` null for system reports. */
export async function insertNotification(
  db: Queryable,
  n: { outboxId: number | null; type: string; caseId: string | null; message: string; data: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO notifications (outbox_id, type, case_id, message, data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (outbox_id) DO NOTHING`,
    [n.outboxId, n.type, n.caseId, n.message, JSON.stringify(n.data)],
  );
}

/** Notifications newest first, by case and unread when asked. */
export async function listNotifications(
  db: Queryable,
  filter: { caseId?: string; unread?: boolean; limit: number; offset: number },
): Promise<NotificationRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.caseId) {
    params.push(filter.caseId);
    where.push(`case_id = $${params.length}`);
  }
  if (filter.unread) where.push('read_at IS NULL');
  params.push(filter.limit, filter.offset);
  const { rows } = await db.query<Db>(
    `SELECT id, type, case_id, message, data, created_at, read_at, read_by FROM notifications ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY created_at DESC, id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return rows.map(toRow);
}

/**
 * Marks a notification read by `readBy` (a token subject). The list is the team's: the first read,
 * its time and who, is kept; reading it again changes nothing.
 */
export async function markNotificationRead(db: Queryable, id: number, readBy: string): Promise<boolean> {
  return (
    (await db.query(
      `UPDATE notifications SET read_by = CASE WHEN read_at IS NULL THEN $2 ELSE read_by END, read_at = COALESCE(read_at, now()) WHERE id = $1`,
      [id, readBy],
    )).rowCount === 1
  );
}
