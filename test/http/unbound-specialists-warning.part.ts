import { randomUUID } from 'node:crypto';
import { warnUnboundSpecialists } from '../../src/http/case-access';
import { logger } from '../../src/log';
import { CaptureTransport } from '../support/capture-log';
import { testDatabaseForFile, type TestDatabase } from '../support/postgres';

/**
 * In the permissive mode (`SPECIALIST_CASE_ACCESS=unless-assigned-elsewhere`, the default) any token
 * with the specialist role may open, write and sign for a specialist the directory binds to no token
 * subject: the service says at start how many active specialists are so (a count, no names), and
 * nothing in the strict mode.
 */
let t: TestDatabase;
testDatabaseForFile((created) => (t = created));
async function addSpecialist(userSub: string | null, active = true): Promise<void> {
  await t.db.query(
    `INSERT INTO specialists (id, npi, name, specialty_codes, active, user_sub) VALUES ($1, $2, '[{"family": "Test"}]', '{}', $3, $4)`,
    [randomUUID(), String(Math.floor(1e9 + Math.random() * 8e9)), active, userSub],
  );
}

async function captured<T>(run: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const capture = new CaptureTransport();
  const others = [...logger.transports];
  const level = logger.level;
  logger.level = 'info';
  for (const x of others) x.silent = true;
  logger.add(capture);
  try {
    return { result: await run(), lines: capture.lines };
  } finally {
    logger.remove(capture);
    for (const x of others) x.silent = false;
    logger.level = level;
  }
}

it('counts the active specialists bound to no token subject, and warns, in the permissive mode only', async () => {
  await addSpecialist('dr-bound');
  await addSpecialist(null);
  await addSpecialist(null);
  await addSpecialist(null, false);
  const permissive = await captured(() => warnUnboundSpecialists(t.db, 'unless-assigned-elsewhere'));
  expect(permissive.result).toBe(2);
  expect(permissive.lines).toHaveLength(1);
  expect(JSON.parse(permissive.lines[0] ?? '{}')).toMatchObject({ level: 'warn', counts: { unbound: 2 } });
  expect(permissive.lines[0]).toMatch(/sign, for them/);
  const strict = await captured(() => warnUnboundSpecialists(t.db, 'assigned'));
  expect(strict).toEqual({ result: undefined, lines: [] });
});
