import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Migration } from '../../src/db/migrations';
import { TEST_POSTGRES_ADMIN_URL } from '../support/postgres';
import { pruneStalePostgresTemplates, TEMPLATE_PREFIX, templateName, touchTemplate } from '../support/postgres-template';

/**
 * The PostgreSQL test templates of other migrations (~9 MB each) are dropped once a day unused (the time
 * a run noted on them; one never noted is noted when first seen); the current ones stay, however long
 * unused, and so do recent others (another checkout's run may be copying them).
 */
const HOUR = 60 * 60 * 1000;
const tag = randomBytes(4).toString('hex');
/** A list of migrations only this test has: its template name is this test's own. */
const ownList: Migration[] = [{ version: 1, name: `prune_test_${tag}`, sql: 'SELECT 1' }];
const names = {
  stale: `${TEMPLATE_PREFIX}0_${tag}_stale`,
  recent: `${TEMPLATE_PREFIX}0_${tag}_recent`,
  halfBuilt: `${TEMPLATE_PREFIX}0_${tag}_half`,
  current: templateName(ownList),
};
const ours = new Set(Object.values(names));
let admin: pg.Client;

async function database(name: string, template: boolean, lastUsedHoursAgo?: number): Promise<void> {
  await admin.query(`CREATE DATABASE ${name}`);
  if (template) await admin.query(`ALTER DATABASE ${name} WITH IS_TEMPLATE true`);
  if (lastUsedHoursAgo !== undefined) await touchTemplate(admin, name, new Date(Date.now() - lastUsedHoursAgo * HOUR));
}

async function existing(): Promise<string[]> {
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname', [[...ours]]);
  return rows.map((r) => r.datname);
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await admin.connect();
});

afterAll(async () => {
  for (const name of ours) {
    await admin.query(`ALTER DATABASE ${name} WITH IS_TEMPLATE false`).catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
  await admin.end();
});

it('drops templates of other migrations a day unused, keeping the current ones and recent others', async () => {
  expect(names.current.startsWith(TEMPLATE_PREFIX)).toBe(true);
  await database(names.stale, true, 25);
  await database(names.recent, true, 2);
  await database(names.current, true, 30 * 24);
  // Never marked a template nor noted (a killed run's half-built one): noted now, and aged from then.
  await database(names.halfBuilt, false);

  const dropped = await pruneStalePostgresTemplates(admin, [ownList], { only: (name) => ours.has(name) });
  expect(dropped).toEqual([names.stale]);
  expect(await existing()).toEqual([names.current, names.halfBuilt, names.recent].sort());

  // A day on, the half-built one and the other recent one go too; the current one stays.
  const later = await pruneStalePostgresTemplates(admin, [ownList], { only: (name) => ours.has(name), now: new Date(Date.now() + 26 * HOUR) });
  expect(later.sort()).toEqual([names.halfBuilt, names.recent].sort());
  expect(await existing()).toEqual([names.current]);
});
