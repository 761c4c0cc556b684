import { randomUUID } from 'node:crypto';
import { transitionCase, type CaseServiceDeps } from '../../src/cases/case-service';
import { loadDomainData } from '../../src/cases/domain-data';
import type { Principal } from '../../src/http/auth';
import { testDatabaseForFile, type TestDatabase } from '../support/postgres';
import { insertTestCase } from '../support/pull-task';

/**
 * Two requests each read their clock before they take the case row lock: a specialist's information
 * request (case → awaiting_information, a pause opened at t) and a case manager's cancel read a few
 * milliseconds before it, locking second. The cancel closes the pause at its own, earlier, time: the
 * pause is closed where it started (zero length, not counted) instead of ending before it starts,
 * which made the SLA computation throw and the cancel answer 500.
 */
let t: TestDatabase;
testDatabaseForFile((created) => (t = created));
const SYSTEM: Principal = { sub: 'system:test', roles: [] };
const deps = (): CaseServiceDeps => ({ db: t.db, config: { programTimeZone: 'America/New_York' }, domain: loadDomainData() });

it('a cancel that read its clock before a pause it meets was opened closes that pause where it started', async () => {
  const caseId = randomUUID();
  const opened = new Date('2026-03-04T15:00:00.005Z');
  const cancelRead = new Date('2026-03-04T15:00:00.000Z');
  await insertTestCase(t.db, caseId, 'in_review', new Date('2026-03-01T12:00:00Z'));
  await t.db.query('UPDATE cases SET records_complete_at = $2 WHERE id = $1', [caseId, new Date('2026-03-02T12:00:00Z')]);
  await t.db.transaction((tx) => transitionCase(deps(), tx, { id: caseId, to: 'awaiting_information', reason: 'Please send the MRI report.', actor: SYSTEM, now: opened }));
  await expect(t.db.transaction((tx) => transitionCase(deps(), tx, { id: caseId, to: 'cancelled', reason: 'The family withdrew.', actor: SYSTEM, now: cancelRead }))).resolves.toBeUndefined();
  const { rows } = await t.db.query<{ started_at: Date; ended_at: Date | null }>('SELECT started_at, ended_at FROM sla_pauses WHERE case_id = $1', [caseId]);
  expect(rows).toEqual([{ started_at: opened, ended_at: opened }]);
  const status = (await t.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [caseId])).rows[0]?.status;
  expect(status).toBe('cancelled');
});
