import { randomUUID } from 'node:crypto';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, findTask, insertPull, type TaskRow } from '../../src/pull/pull-repository';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertPullTask, insertTestCase } from '../support/pull-task';

/**
 * The count of a query's `_include`d resources (https://hl7.org/fhir/R4/search.html#include) is kept
 * with its cursor: a page committed twice counts nothing twice, an included resource brought again on
 * a later page is not counted again, and a query that starts over (expired paging cursor) counts its
 * included resources again from its new first page, as it does its matches.
 */
const BASE = 'https://ehr.example.org/fhir';
let t: TestDatabase;
let caseId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  caseId = randomUUID();
  await insertTestCase(t.db, caseId);
}, 60_000);
afterAll(async () => {
  await t.drop();
});

/** A MedicationRequest page: its matches and, included, the Medication `med-1` (without search.mode on `noMode`). */
function page(ids: readonly string[], noMode = false): Buffer {
  const entry = [
    ...ids.map((id) => ({ resource: { resourceType: 'MedicationRequest', id, medicationReference: { reference: 'Medication/med-1' } }, search: { mode: 'match' } })),
    { resource: { resourceType: 'Medication', id: 'med-1' }, ...(noMode ? {} : { search: { mode: 'include' } }) },
  ];
  return Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
}

async function commit(task: TaskRow, pageNo: number, body: Buffer, fromUrl: string | null, nextUrl: string | null, startsOver?: { pages: number; cursor: string }) {
  const entries = pageEntries(scanSearchPage(body, body.length, BASE));
  return commitPage(t.db, {
    task, caseId, fromUrl, pageNo, body, fetchedAt: new Date(), entries, nextUrl, retriesDelta: 0, attachments: [], ...(startsOver ? { startsOver } : {}),
  });
}

async function reread(id: string): Promise<TaskRow> {
  const task = await findTask(t.db, id);
  if (!task) throw new Error('task gone');
  return task;
}

it('counts an included resource once over the pages of a query, once when a page is committed twice, and again from a fresh start', async () => {
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  let task = await insertPullTask(t.db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl: BASE, resourceType: 'MedicationRequest', path: 'MedicationRequest' });

  expect((await commit(task, 1, page(['mr-1', 'mr-2']), null, `${BASE}/MedicationRequest?page=2`)).committed).toBe(true);
  task = await reread(task.id);
  expect(task).toMatchObject({ resources: 3, typeCounts: { MedicationRequest: 2, Medication: 1 }, included: ['Medication/med-1'] });

  // Page 2 brings the same Medication again, this server without search.mode: counted by type, once.
  const second = page(['mr-3'], true);
  expect((await commit(task, 2, second, `${BASE}/MedicationRequest?page=2`, null)).committed).toBe(true);
  expect((await commit(task, 2, second, `${BASE}/MedicationRequest?page=2`, null)).committed).toBe(false);
  const done = await reread(task.id);
  expect(done).toMatchObject({ pages: 2, resources: 4, typeCounts: { MedicationRequest: 3, Medication: 1 }, included: ['Medication/med-1'] });

  // The same query started over from page one (its cursor expired after page 1): counted afresh.
  const midway = { ...task, pages: 1, nextUrl: `${BASE}/MedicationRequest?page=2` };
  await t.db.query('UPDATE pull_tasks SET pages = 1, next_url = $2 WHERE id = $1', [task.id, midway.nextUrl]);
  const fresh = { ...midway, nextUrl: null, pages: 0, resources: 0, typeCounts: {}, included: [] };
  expect((await commit(fresh, 1, page(['mr-1']), null, null, { pages: 1, cursor: midway.nextUrl })).committed).toBe(true);
  expect(await reread(task.id)).toMatchObject({ pages: 1, resources: 2, typeCounts: { MedicationRequest: 1, Medication: 1 }, included: ['Medication/med-1'] });
});
