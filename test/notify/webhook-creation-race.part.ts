import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Database, Queryable, QueryResult } from '../../src/db/database';
import { recordEvent } from '../../src/notify/events';
import { drainOutbox } from '../../src/notify/outbox-processor';
import { enableWebhook, findWebhook, insertWebhook } from '../../src/notify/webhook-repository';
import { openBackendDatabase, testDatabaseForFile, type TestDatabase } from '../support/postgres';

/**
 * A subscriber is sent every event raised at or after its `enabled_at`, even when the transaction
 * that creates (or enables it again) is still open while such an event is raised and drained: the
 * drain that could see the event but not the subscriber waits for that transaction, rather than
 * marking the event processed without it. Real PostgreSQL, two connections: the subscriber's
 * transaction is held open on its own `pg` client (its `transaction` a savepoint inside it), the
 * event and the drains go through the pool. No sleeps: the test waits until the drain has either
 * finished or is waiting for a lock (pg_stat_activity), then commits.
 */
let t: TestDatabase;

testDatabaseForFile((created) => (t = created));

// Each test has its own subscribers and events.
afterEach(async () => {
  await t.db.query('DELETE FROM webhooks');
  await t.db.query('UPDATE outbox SET processed_at = now() WHERE processed_at IS NULL');
});

/** A transaction begun on its own connection, held open until `commit`: a `Database` whose `transaction` is a savepoint in it. */
interface HeldTransaction {
  readonly db: Database;
  /** The connection's backend pid (to tell its waits from the pool's). */
  readonly pid: number;
  commit(): Promise<void>;
  /** Rolls back what is not committed and closes the connection. */
  end(): Promise<void>;
}

async function beginHeld(url: string): Promise<HeldTransaction> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  await client.query('BEGIN');
  let savepoints = 0;
  const db: Database = {
    backend: 'postgres',
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const result = await client.query(sql, params as unknown[]);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const name = `held_${++savepoints}`;
      await client.query(`SAVEPOINT ${name}`);
      try {
        const value = await fn(db);
        await client.query(`RELEASE SAVEPOINT ${name}`);
        return value;
      } catch (err) {
        await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        throw err;
      }
    },
    async ping(): Promise<void> {
      await client.query('SELECT 1');
    },
    async close(): Promise<void> {
      // The connection is ended by `end`.
    },
  };
  return {
    db,
    pid: rows[0]?.pid ?? 0,
    async commit() {
      await client.query('COMMIT');
    },
    async end() {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    },
  };
}

/** Stores an active subscriber of `transfer.requested` through `db` (the held transaction); returns its id. */
async function subscriber(db: Database): Promise<string> {
  const id = randomUUID();
  await insertWebhook(db, { id, url: 'https://hooks.example.org/race', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' });
  return id;
}

/** Raises (and commits, through the pool) a `transfer.requested` event; returns its outbox id. */
async function raise(label: string): Promise<number> {
  await recordEvent(t.db, 'transfer.requested', null, { label });
  const { rows } = await t.db.query<{ id: string }>('SELECT max(id) AS id FROM outbox');
  return Number(rows[0]?.id);
}

/** The events the subscriber has a delivery of. */
async function deliveredEvents(webhookId: string): Promise<number[]> {
  const { rows } = await t.db.query<{ outbox_id: string }>('SELECT outbox_id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY outbox_id', [webhookId]);
  return rows.map((r) => Number(r.outbox_id));
}

/** Whether the event was raised at or after the subscriber's `enabled_at` (compared in SQL, to the microsecond). */
async function raisedFromEnabled(webhookId: string, outboxId: number): Promise<boolean> {
  const { rows } = await t.db.query<{ after: boolean }>('SELECT o.created_at >= w.enabled_at AS after FROM outbox o, webhooks w WHERE o.id = $1 AND w.id = $2', [outboxId, webhookId]);
  return rows[0]?.after === true;
}

/**
 * Waits until the drain has finished, or is waiting for a lock (then which kind: `advisory`,
 * `tuple`, `transactionid`…). Polls pg_stat_activity; never waits longer than 10 s.
 */
async function drainedOrWaiting(drain: Promise<unknown>, held: HeldTransaction): Promise<string> {
  let finished = false;
  drain.then(
    () => (finished = true),
    () => (finished = true),
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await t.db.query<{ wait_event: string }>(
      `SELECT wait_event FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1`,
      [held.pid],
    );
    if (finished) return 'drained';
    if (rows[0]) return `waiting (${rows[0].wait_event})`;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the drain neither finished nor waited for a lock within 10 s');
}

describe('a subscriber created while an event is raised and drained', () => {
  it('is sent the event raised after its creation began, drained before the creation committed', async () => {
    const held = await beginHeld(t.url);
    let drain: Promise<unknown> | undefined;
    try {
      // W's creation has begun (and written its row), not committed.
      const hook = await subscriber(held.db);
      // An event raised after that, committed.
      const event = await raise('during-creation');
      // A drain starts before W's creation commits: it cannot see W.
      const draining = drainOutbox(t.db);
      drain = draining;
      const first = await drainedOrWaiting(draining, held);
      await held.commit();
      await draining;
      await drainOutbox(t.db);

      expect(await raisedFromEnabled(hook, event)).toBe(true);
      expect(await deliveredEvents(hook)).toEqual([event]);
      // It waited for the creation rather than processing the event without W.
      expect(first).toBe('waiting (advisory)');
    } finally {
      await held.end();
      await drain?.catch(() => undefined);
    }
  });

  it('is not sent an event drained between the start of its transaction and its insert: its moment is after that event', async () => {
    const held = await beginHeld(t.url);
    try {
      await held.db.query('SELECT 1'); // W's transaction has started (now() is fixed) …
      const event = await raise('before-insert');
      expect(await drainedOrWaiting(drainOutbox(t.db), held)).toBe('drained');
      const hook = await subscriber(held.db); // … and only now writes W
      await held.commit();
      await drainOutbox(t.db);

      // Whatever W's moment is, it is sent exactly the events raised from it: here none.
      expect(await deliveredEvents(hook)).toEqual((await raisedFromEnabled(hook, event)) ? [event] : []);
      expect(await raisedFromEnabled(hook, event)).toBe(false);
    } finally {
      await held.end();
    }
  });
});

describe('a subscriber enabled again while an event is raised and drained', () => {
  /** A disabled subscriber (committed). */
  async function disabledSubscriber(): Promise<string> {
    const hook = await subscriber(t.db);
    await t.db.query(`UPDATE webhooks SET state = 'disabled', consecutive_failures = 3, disabled_at = now() WHERE id = $1`, [hook]);
    return hook;
  }

  it('has a moment after every event a drain processed without it (none is missed)', async () => {
    const hook = await disabledSubscriber();
    const held = await beginHeld(t.url);
    try {
      await held.db.query('SELECT 1'); // the enable's transaction has started (now() is fixed)
      const event = await raise('while-enabling');
      // The drain meets W still disabled (the enable has not reached its row) and processes the event without it.
      expect(await drainedOrWaiting(drainOutbox(t.db), held)).toBe('drained');
      expect(await enableWebhook(held.db, hook)).toBe(true);
      await held.commit();
      await drainOutbox(t.db);

      // W is sent exactly the events raised from its moment: the event was processed without it, so its moment must be after it.
      expect(await deliveredEvents(hook)).toEqual((await raisedFromEnabled(hook, event)) ? [event] : []);
      expect(await raisedFromEnabled(hook, event)).toBe(false);
      expect(await findWebhook(t.db, hook)).toMatchObject({ state: 'active' });
    } finally {
      await held.end();
    }
  });

  it('is sent the event raised after the enable, drained before the enable committed', async () => {
    const hook = await disabledSubscriber();
    const held = await beginHeld(t.url);
    let drain: Promise<unknown> | undefined;
    try {
      expect(await enableWebhook(held.db, hook)).toBe(true);
      const event = await raise('after-enable');
      const draining = drainOutbox(t.db);
      drain = draining;
      const first = await drainedOrWaiting(draining, held);
      await held.commit();
      await draining;
      await drainOutbox(t.db);

      expect(await raisedFromEnabled(hook, event)).toBe(true);
      expect(await deliveredEvents(hook)).toEqual([event]);
      expect(first).toMatch(/^waiting/);
    } finally {
      await held.end();
      await drain?.catch(() => undefined);
    }
  });
});

it('lets drains run beside each other: one waits only for a creation or an enable', async () => {
  const hook = await subscriber(t.db);
  // A drain in progress, on its own connection (its transaction open).
  const held = await beginHeld(t.url);
  let creating: Promise<string> | undefined;
  try {
    const inProgress = await held.db.transaction(async () => drainOutbox(held.db));
    expect(inProgress.events).toBe(0);
    const event = await raise('beside-a-drain');
    // Another drain is not held up by it …
    expect((await drainOutbox(t.db)).webhookDeliveries).toHaveLength(1);
    expect(await deliveredEvents(hook)).toEqual([event]);
    // … a creation is, until it ends.
    creating = subscriber(t.db);
    const waiting = await drainedOrWaiting(creating, held);
    expect(waiting).toBe('waiting (advisory)');
    await held.commit();
    await creating;
  } finally {
    await held.end();
    await creating?.catch(() => undefined);
  }
});

it('works on PGlite (one connection: the locks are taken and released by each transaction in turn)', async () => {
  const { db, close } = await openBackendDatabase('pglite');
  try {
    const id = randomUUID();
    await insertWebhook(db, { id, url: 'https://hooks.example.org/p', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' });
    await recordEvent(db, 'transfer.requested', null, { label: 'pglite' });
    // A drain and a creation asked at once are run one after the other.
    const other = randomUUID();
    const [drained] = await Promise.all([
      drainOutbox(db),
      insertWebhook(db, { id: other, url: 'https://hooks.example.org/q', sealedSecret: 'v1.sealed', events: ['transfer.requested'], allowInsecureHttp: false, createdBy: 'test' }),
    ]);
    expect(drained.webhookDeliveries.length).toBeGreaterThanOrEqual(1);
    await db.query(`UPDATE webhooks SET state = 'disabled' WHERE id = $1`, [id]);
    expect(await enableWebhook(db, id)).toBe(true);
    await recordEvent(db, 'transfer.requested', null, { label: 'pglite-after' });
    expect((await drainOutbox(db)).webhookDeliveries).toHaveLength(2);
    const hook = await findWebhook(db, other);
    expect(hook?.enabledAt).toEqual(hook?.createdAt);
  } finally {
    await close();
  }
});
