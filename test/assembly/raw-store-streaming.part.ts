import { createHash, randomUUID } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import { findBundle, findBundleJson, insertBundleVersion } from '../../src/assembly/bundle-repository';
import { readRawResources } from '../../src/assembly/raw-resource-stream';
import type { RawText } from '../../src/assembly/build-assembly';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, insertPull } from '../../src/pull/pull-repository';
import type { Database } from '../../src/db/database';
import { openBackendDatabase } from '../support/postgres';
import { insertTestCase, insertPullTask } from '../support/pull-task';

/**
 * Assembly reads the raw store in batches through one cursor and stores large bundles in parts: every
 * raw row is read exactly once whatever the batch size, and a bundle stored in many parts reads back
 * deeply equal, on both backends.
 */
const ROWS_PER_SOURCE = 37;

describe.each(['postgres', 'pglite'] as const)('the raw store read on %s', (backend) => {
  let t: { db: Database; drop(): Promise<void> };
  let caseId: string;

  beforeAll(async () => {
    const handle = await openBackendDatabase(backend);
    t = { db: handle.db, drop: () => handle.close() };
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

  async function readAll(batchSize: number): Promise<{ keys: string[]; batches: number[]; read: number }> {
    const keys: string[] = [];
    const batches: number[] = [];
    const read = await readRawResources(t.db, caseId, (batch) => {
      batches.push(batch.length);
      for (const r of batch) keys.push(`${r.sourceId}|${r.resourceType}|${r.remoteId}|${r.versionId}`);
    }, batchSize);
    return { keys, batches, read };
  }

  async function allRaw(): Promise<RawText[]> {
    const all: RawText[] = [];
    await readRawResources(t.db, caseId, (batch) => void all.push(...batch), 10);
    return all;
  }

  it('reads every raw row exactly once, whatever the batch size, in batches of that size (none empty)', async () => {
    const { rows } = await t.db.query<{ k: string }>(
      `SELECT source_id || '|' || resource_type || '|' || remote_id || '|' || version_id AS k FROM raw_resources
       WHERE case_id = $1 ORDER BY source_id, resource_type, remote_id, version_id`,
      [caseId],
    );
    expect(rows).toHaveLength(2 * ROWS_PER_SOURCE);
    for (const size of [1, 5, 36, 37, 74, 1000]) {
      const { keys, batches, read } = await readAll(size);
      // In the table's order, not the key's: assembly does not depend on it.
      expect([...keys].sort()).toEqual(rows.map((r) => r.k).sort());
      expect(read).toBe(rows.length);
      expect(batches).toHaveLength(Math.ceil(rows.length / size));
      for (const n of batches.slice(0, -1)) expect(n).toBe(size);
      expect(batches.at(-1)).toBe(rows.length - size * (batches.length - 1));
    }
  });

  it('gives each resource\'s JSON as stored, with fetch time and hash', async () => {
    for (const r of await allRaw()) {
      expect((JSON.parse(r.resourceJson) as { id: string }).id).toBe(r.remoteId);
      // The hash is of the resource's bytes as the page carried them.
      const sent = JSON.stringify({ resourceType: r.resourceType, id: r.remoteId, meta: { versionId: r.versionId } });
      expect(r.sha256).toBe(createHash('sha256').update(sent).digest('hex'));
      expect(Number.isNaN(Date.parse(r.fetchedAt))).toBe(false);
    }
  });

  it('refuses a batch size that is not a positive whole number', async () => {
    await expect(readRawResources(t.db, caseId, () => undefined, 0)).rejects.toThrow(/batchSize/);
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
});
