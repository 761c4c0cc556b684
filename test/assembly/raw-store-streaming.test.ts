import { createHash, randomUUID } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import { findBundle, findBundleJson, insertBundleVersion } from '../../src/assembly/bundle-repository';
import { rawResourceBatches } from '../../src/assembly/raw-resource-stream';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, insertPull } from '../../src/pull/pull-repository';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';

/**
 * Assembly reads the raw store in keyset batches (two queries in flight) and stores large bundles in
 * parts: every raw row is read exactly once whatever the batch size, and a bundle stored in many
 * parts reads back deeply equal.
 */
let t: TestDatabase;
let caseId: string;
const ROWS_PER_SOURCE = 37;

beforeAll(async () => {
  t = await createTestDatabase();
  caseId = randomUUID();
  await insertTestCase(t.db, caseId);
  const pullId = randomUUID();
  await insertPull(t.db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  for (const name of ['a', 'b']) {
    const task = await insertPullTask(t.db, { caseId, pullId, name, baseUrl: `https://${name}.example.org/fhir`, resourceType: '*', path: 'Patient/p/$everything' });
    // Two versions of some resources, several types: the key order is not the insertion order.
    const resources = Array.from({ length: ROWS_PER_SOURCE }, (_, i) => ({
      resourceType: i % 3 === 0 ? 'Condition' : 'Observation', id: `r${i % 30}`, meta: { versionId: String(i) },
    }));
    const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) }));
    const entries = pageEntries(scanSearchPage(body, body.length, 'https://a.example.org/fhir'));
    await t.db.transaction((tx) =>
      commitPage(tx, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: [] }),
    );
  }
}, 60_000);

afterAll(async () => {
  await t.drop();
});

async function readAll(batchSize: number): Promise<{ keys: string[]; batches: number }> {
  const keys: string[] = [];
  let batches = 0;
  for await (const batch of rawResourceBatches(t.db, caseId, batchSize)) {
    batches += 1;
    for (const r of batch) keys.push(`${r.sourceId}|${r.resourceType}|${r.remoteId}|${r.versionId}`);
  }
  return { keys, batches };
}

it('reads every raw row exactly once, in key order, whatever the batch size', async () => {
  const { rows } = await t.db.query<{ k: string }>(
    `SELECT source_id || '|' || resource_type || '|' || remote_id || '|' || version_id AS k FROM raw_resources
     WHERE case_id = $1 ORDER BY source_id, resource_type, remote_id, version_id`,
    [caseId],
  );
  expect(rows).toHaveLength(2 * ROWS_PER_SOURCE);
  for (const size of [1, 5, 36, 37, 74, 1000]) {
    const { keys, batches } = await readAll(size);
    expect(keys).toEqual(rows.map((r) => r.k));
    expect(batches).toBe(Math.ceil(rows.length / size));
  }
});

it('gives each resource\'s JSON as stored, with fetch time and hash', async () => {
  for await (const batch of rawResourceBatches(t.db, caseId, 10)) {
    for (const r of batch) {
      expect((JSON.parse(r.resourceJson) as { id: string }).id).toBe(r.remoteId);
      // The hash is of the resource's bytes as the page carried them.
      const sent = JSON.stringify({ resourceType: r.resourceType, id: r.remoteId, meta: { versionId: r.versionId } });
      expect(r.sha256).toBe(createHash('sha256').update(sent).digest('hex'));
      expect(Number.isNaN(Date.parse(r.fetchedAt))).toBe(false);
    }
  }
});

it('stores a bundle larger than one part and reads it back deeply equal', async () => {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    identifier: { system: 'urn:example', value: 'big' },
    type: 'document',
    timestamp: '2026-11-01T00:00:00Z',
    entry: Array.from({ length: 3_000 }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-5000-8000-${String(i).padStart(12, '0')}`,
      resource: { resourceType: 'Basic', id: String(i), code: { text: `Ärger ${'x'.repeat(400)} ${i}` } },
    })),
  };
  expect(JSON.stringify(bundle).length).toBeGreaterThan(1024 * 1024); // more than one part
  const version = await insertBundleVersion(t.db, { caseId, bundleId: 'big', bundle, report: { ok: true }, options: {}, trigger: 'test' });
  const small: Bundle = { resourceType: 'Bundle', type: 'document', entry: [] };
  const next = await insertBundleVersion(t.db, { caseId, bundleId: 'small', bundle: small, report: {}, options: {}, trigger: 'test' });
  expect(next).toBe(version + 1);
  expect((await findBundle(t.db, caseId, version))?.bundle).toEqual(bundle);
  expect((await findBundle(t.db, caseId))?.bundle).toEqual(small);
  // Stored as the exact text JSON.stringify gives, in several parts.
  expect((await findBundleJson(t.db, caseId, version))?.json).toBe(JSON.stringify(bundle));
  const { rows } = await t.db.query<{ parts: number }>('SELECT count(*) AS parts FROM case_bundle_parts WHERE case_id = $1 AND version = $2', [caseId, version]);
  expect(rows[0]?.parts).toBeGreaterThan(1);
});
