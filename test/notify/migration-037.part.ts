import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database';
import { MIGRATIONS } from '../../src/db/migrations';
import { migrate } from '../../src/db/migrator';
import { databaseWithMigrations, type Backend } from '../support/postgres';
import { migrationsBefore } from '../support/migration-lists';

/**
 * Migration 037 on a populated store, on both backends: each subscriber was enabled when it was
 * created (`enabled_at` backfilled from `created_at`, a disabled one too: enabling it again moves
 * it); each finished webhook delivery has `finished_at` (delivered: when delivered; failed: when it
 * was queued, the closest recorded time); a delivery can be `skipped`; and a case-manager
 * notification outlives the outbox event it came from.
 */
const at = (iso: string): Date => new Date(iso);

async function populate(db: Database): Promise<{ active: string; disabled: string; delivered: string; failed: string; queued: string; outboxId: number }> {
  const active = randomUUID();
  const disabled = randomUUID();
  for (const [id, state, createdAt] of [[active, 'active', '2026-01-05T09:00:00Z'], [disabled, 'disabled', '2026-01-06T09:00:00Z']] as const) {
    await db.query(
      `INSERT INTO webhooks (id, url, sealed_secret, events, state, created_by, created_at, disabled_at)
       VALUES ($1, 'https://hooks.example.org/h', 'v1.sealed', '{transfer.requested}', $2, 'm037', $3, CASE WHEN $2 = 'disabled' THEN now() END)`,
      [id, state, at(createdAt)],
    );
  }
  const { rows } = await db.query<{ id: string }>(`INSERT INTO outbox (type, data, processed_at) VALUES ('transfer.requested', '{}', now()) RETURNING id`);
  const outboxId = Number(rows[0]?.id);
  await db.query(`INSERT INTO notifications (outbox_id, type, message) VALUES ($1, 'transfer.requested', 'The family asked to transfer care.')`, [outboxId]);
  const [delivered, failed, queued] = [randomUUID(), randomUUID(), randomUUID()] as const;
  await db.query(
    `INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state, created_at, delivered_at) VALUES
       ($1, $3, $5, 'delivered', '2026-01-07T09:00:00Z', '2026-01-07T09:00:05Z'),
       ($2, $4, $5, 'failed', '2026-01-07T09:00:00Z', NULL)`,
    [delivered, failed, active, disabled, outboxId],
  );
  const other = randomUUID();
  await db.query(
    `INSERT INTO webhooks (id, url, sealed_secret, events, state, created_by) VALUES ($1, 'https://hooks.example.org/o', 'v1.sealed', '{transfer.requested}', 'active', 'm037')`,
    [other],
  );
  await db.query(`INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state) VALUES ($1, $2, $3, 'queued')`, [queued, other, outboxId]);
  return { active, disabled, delivered, failed, queued, outboxId };
}

describe.each<Backend>(['postgres', 'pglite'])('migration 037 (%s)', (backend) => {
  it('backfills when subscribers were enabled and deliveries finished, allows skipped deliveries, and keeps notifications of pruned events', async () => {
    const { db, close } = await databaseWithMigrations(backend, migrationsBefore(37));
    try {
      const seeded = await populate(db);
      expect(await migrate(db, MIGRATIONS.filter((m) => m.version <= 37))).toEqual([37]);

      const hooks = await db.query<{ id: string; enabled_at: Date; created_at: Date }>('SELECT id, enabled_at, created_at FROM webhooks WHERE id = ANY($1::uuid[])', [[seeded.active, seeded.disabled]]);
      expect(hooks.rows).toHaveLength(2);
      for (const h of hooks.rows) expect(h.enabled_at).toEqual(h.created_at);

      const finished = async (id: string) => (await db.query<{ finished_at: Date | null }>('SELECT finished_at FROM webhook_deliveries WHERE id = $1', [id])).rows[0]?.finished_at;
      expect(await finished(seeded.delivered)).toEqual(at('2026-01-07T09:00:05Z'));
      expect(await finished(seeded.failed)).toEqual(at('2026-01-07T09:00:00Z'));
      expect(await finished(seeded.queued)).toBeNull();

      // A new subscriber is enabled when created.
      const fresh = randomUUID();
      await db.query(`INSERT INTO webhooks (id, url, sealed_secret, events, state, created_by) VALUES ($1, 'https://hooks.example.org/f', 'v1.sealed', '{transfer.requested}', 'active', 'm037')`, [fresh]);
      const freshRow = (await db.query<{ enabled_at: Date; created_at: Date }>('SELECT enabled_at, created_at FROM webhooks WHERE id = $1', [fresh])).rows[0];
      expect(freshRow?.enabled_at).toEqual(freshRow?.created_at);

      // skipped is a finished state; a finished state needs its finish time, a queued one has none.
      await db.query(`UPDATE webhook_deliveries SET state = 'skipped', finished_at = now() WHERE id = $1`, [seeded.queued]);
      await expect(db.query(`UPDATE webhook_deliveries SET state = 'delivered', finished_at = NULL WHERE id = $1`, [seeded.delivered])).rejects.toThrow(/webhook_deliveries_finished/);
      await expect(db.query(`UPDATE webhook_deliveries SET state = 'queued' WHERE id = $1`, [seeded.delivered])).rejects.toThrow(/webhook_deliveries_finished/);

      await db.query('DELETE FROM outbox WHERE id = $1', [seeded.outboxId]);
      const notes = await db.query<{ outbox_id: string | null; message: string }>('SELECT outbox_id, message FROM notifications');
      expect(notes.rows).toEqual([{ outbox_id: null, message: 'The family asked to transfer care.' }]);
    } finally {
      await close();
    }
  });
});
