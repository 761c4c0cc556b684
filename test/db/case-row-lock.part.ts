import { randomUUID } from 'node:crypto';
import { findCase, insertCaseEvent } from '../../src/db/case-repository';
import type { Database } from '../../src/db/database';
import { openBackendDatabase } from '../support/postgres';
import { insertTestCase } from '../support/pull-task';

/**
 * The case row lock (`CASE_ROW_LOCK`) serialises the writers of a case, but does not hold up rows
 * inserted elsewhere that reference the case (a pull's raw resources, timeline events): under
 * `FOR UPDATE` a case cancelled while a pull committed a page deadlocked (the cancel held the case
 * and waited for the pull's task; the page held the task and waited for the case, through the
 * foreign key). PostgreSQL only: PGlite has one connection.
 */
let db: Database;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ db, close } = await openBackendDatabase('postgres'));
});
afterAll(async () => {
  await close();
});

async function newCase(): Promise<string> {
  const id = randomUUID();
  await insertTestCase(db, id);
  return id;
}

/** Runs `during` while another transaction holds the case row lock, then lets that one commit. */
async function whileLocked<T>(caseId: string, during: () => Promise<T>): Promise<T> {
  let locked: () => void = () => undefined;
  let release: () => void = () => undefined;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const holder = db.transaction(async (tx) => {
    await findCase(tx, caseId, true);
    locked();
    await released;
  });
  await isLocked;
  try {
    return await during();
  } finally {
    release();
    await holder;
  }
}

/** `fn` in a transaction that gives up waiting for a lock after `ms`. */
const withLockTimeout = <T>(ms: number, fn: (tx: Parameters<Parameters<Database['transaction']>[0]>[0]) => Promise<T>): Promise<T> =>
  db.transaction(async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = '${ms}ms'`);
    return fn(tx);
  });

it('lets rows referencing the case be inserted while the case row is locked', async () => {
  const caseId = await newCase();
  await whileLocked(caseId, () =>
    withLockTimeout(5_000, (tx) => insertCaseEvent(tx, { caseId, type: 'pull_page', actorSub: 'lock-test', reason: 'a row referencing the case' })),
  );
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM case_events WHERE case_id = $1 AND type = 'pull_page'", [caseId]);
  expect(rows[0]?.n).toBe(1);
});

it('still serialises the writers of the case: a second lock waits for the first', async () => {
  const caseId = await newCase();
  const refused = await whileLocked(caseId, () => withLockTimeout(200, (tx) => findCase(tx, caseId, true)).then(() => undefined, (err: unknown) => err));
  expect(refused).toMatchObject({ code: '55P03' }); // lock_not_available
  await expect(withLockTimeout(200, (tx) => findCase(tx, caseId, true))).resolves.toMatchObject({ id: caseId });
});
