import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database';
import { logger } from '../../src/log';
import { OutboxPruner, pruneFinishedOutbox } from '../../src/notify/outbox-processor';
import { insertWebhook } from '../../src/notify/webhook-repository';
import { openBackendDatabase, type Backend } from '../support/postgres';

/**
 * The outbox is pruned of what is done: webhook deliveries delivered, failed or skipped, and events
 * processed, older than the retention; never an event still waiting to be processed, nor a delivery
 * still queued (retrying) or its event. Case-manager notifications are the team's list: they stay
 * when their event is pruned. On both backends; timestamps are set in the past with SQL.
 */
const DAY = 86_400_000;

/** An event processed `processedDaysAgo` days ago (null: not processed yet, raised 40 days ago); returns its id. */
async function event(db: Database, processedDaysAgo: number | null): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO outbox (type, data, created_at, processed_at)
     VALUES ('transfer.requested', '{}', now() - interval '40 days', CASE WHEN $1::int IS NULL THEN NULL ELSE now() - make_interval(days => $1::int) END)
     RETURNING id`,
    [processedDaysAgo],
  );
  return Number(rows[0]?.id);
}

/** A delivery of `outboxId` to `webhookId` in `state`, finished `finishedDaysAgo` days ago (queued: not finished); returns its id. */
async function delivery(db: Database, webhookId: string, outboxId: number, state: 'queued' | 'delivered' | 'failed' | 'skipped', finishedDaysAgo?: number): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO webhook_deliveries (id, webhook_id, outbox_id, state, created_at, finished_at)
     VALUES ($1, $2, $3, $4, now() - interval '40 days', CASE WHEN $5::int IS NULL THEN NULL ELSE now() - make_interval(days => $5::int) END)`,
    [id, webhookId, outboxId, state, finishedDaysAgo ?? null],
  );
  return id;
}

async function subscriber(db: Database): Promise<string> {
  const id = randomUUID();
  await insertWebhook(db, { id, url: 'https://hooks.example.org/h', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' });
  return id;
}

const remainingEvents = async (db: Database, ids: readonly number[]): Promise<number[]> =>
  (await db.query<{ id: string }>('SELECT id FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id', [ids])).rows.map((r) => Number(r.id));
const remainingDeliveries = async (db: Database, ids: readonly string[]): Promise<string[]> =>
  (await db.query<{ id: string }>('SELECT id FROM webhook_deliveries WHERE id = ANY($1::uuid[])', [ids])).rows.map((r) => r.id).sort();

describe.each<Backend>(['postgres', 'pglite'])('outbox pruning (%s)', (backend) => {
  let db: Database;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ db, close } = await openBackendDatabase(backend));
  });

  afterAll(async () => {
    await close();
  });

  it('deletes finished rows older than the retention, in batches, and keeps pending, retrying and recent ones', async () => {
    const hook = await subscriber(db);
    const other = await subscriber(db);
    const delivered = await event(db, 40);
    const deliveredOld = await delivery(db, hook, delivered, 'delivered', 40);
    await db.query(`INSERT INTO notifications (outbox_id, type, message) VALUES ($1, 'transfer.requested', 'The family asked to transfer care.')`, [delivered]);
    const failed = await event(db, 40);
    const failedOld = await delivery(db, hook, failed, 'failed', 39);
    const retrying = await event(db, 40);
    const retryingDelivery = await delivery(db, hook, retrying, 'queued');
    const mixed = await event(db, 40);
    const mixedDone = await delivery(db, hook, mixed, 'delivered', 40);
    const mixedQueued = await delivery(db, other, mixed, 'queued');
    const recent = await event(db, 5);
    const recentDelivery = await delivery(db, hook, recent, 'delivered', 5);
    const pending = await event(db, null);
    const noSubscriber = await event(db, 40);
    const skippedLately = await event(db, 40);
    const skippedDelivery = await delivery(db, hook, skippedLately, 'skipped', 1);

    expect(await pruneFinishedOutbox(db, { retentionDays: 30, batchSize: 2 })).toEqual({ events: 3, webhookDeliveries: 3 });

    expect(await remainingEvents(db, [delivered, failed, retrying, mixed, recent, pending, noSubscriber, skippedLately])).toEqual([retrying, mixed, recent, pending, skippedLately]);
    expect(await remainingDeliveries(db, [deliveredOld, failedOld, retryingDelivery, mixedDone, mixedQueued, recentDelivery, skippedDelivery])).toEqual(
      [retryingDelivery, mixedQueued, recentDelivery, skippedDelivery].sort(),
    );
    // The case manager's notification of a pruned event stays in the list.
    const { rows } = await db.query<{ outbox_id: string | null }>(`SELECT outbox_id FROM notifications WHERE message = 'The family asked to transfer care.'`);
    expect(rows).toEqual([{ outbox_id: null }]);
    // Nothing more to prune.
    expect(await pruneFinishedOutbox(db, { retentionDays: 30 })).toEqual({ events: 0, webhookDeliveries: 0 });
    // A shorter retention reaches the recent ones.
    expect(await pruneFinishedOutbox(db, { retentionDays: 3 })).toEqual({ events: 1, webhookDeliveries: 1 });
  });

  it('prunes at most once per period, and logs how many rows it pruned', async () => {
    let now = Date.parse('2026-03-02T10:00:00Z');
    const pruner = new OutboxPruner({ retentionDays: 30, everyMs: 3_600_000, now: () => now });
    const info = jest.spyOn(logger, 'info');
    try {
      const first = await event(db, 31);
      expect(await pruner.pruneIfDue(db)).toEqual({ events: 1, webhookDeliveries: 0 });
      expect(await remainingEvents(db, [first])).toEqual([]);
      expect(info).toHaveBeenCalledWith('outbox pruned', { event: 'outbox.pruned', counts: { events: 1, webhookDeliveries: 0 } });

      const second = await event(db, 31);
      now += 59 * 60_000;
      expect(await pruner.pruneIfDue(db)).toBeUndefined();
      expect(await remainingEvents(db, [second])).toEqual([second]);
      now += 2 * 60_000;
      expect(await pruner.pruneIfDue(db)).toEqual({ events: 1, webhookDeliveries: 0 });
      expect(await remainingEvents(db, [second])).toEqual([]);
      now += DAY;
      expect(await pruner.pruneIfDue(db)).toEqual({ events: 0, webhookDeliveries: 0 });
    } finally {
      info.mockRestore();
    }
  });
});
