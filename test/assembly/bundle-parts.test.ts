import { randomUUID } from 'node:crypto';
import type { Bundle, Condition } from 'fhir/r4';
import { latestDisabledRules, StaleAssemblyError, takeReadSeq } from '../../src/assembly/assembly-order';
import { bundleJsonByteParts } from '../../src/assembly/bundle-json';
import { findBundle, findBundleJson, insertBundleVersion, openBundleText, readBundleHead } from '../../src/assembly/bundle-repository';
import { findCase } from '../../src/db/case-repository';
import type { Database, Queryable, QueryResult } from '../../src/db/database';
import { caseDiagnosisCodes } from '../../src/review/case-diagnoses';
import { openBackendDatabase } from '../support/postgres';
import { insertTestCase } from '../support/pull-task';

/**
 * Bundle versions are stored as the parts of their JSON text (migration 008), written while the next
 * part is serialised; versions stored before keep their `bundle` json. Both forms read back the same
 * way, on both backends.
 */
const CONDITION_SYSTEM = 'urn:test:conditions';

/** A bundle of several ~1 MB parts (more parts than INSERTs kept in flight), one Condition first. */
function largeBundle(code: string): Bundle {
  const condition: Condition = { resourceType: 'Condition', subject: { reference: 'Patient/p' }, code: { coding: [{ system: CONDITION_SYSTEM, code }] } };
  return {
    resourceType: 'Bundle',
    type: 'document',
    timestamp: '2026-11-01T00:00:00Z',
    entry: [
      { fullUrl: 'urn:uuid:00000000-0000-5000-8000-000000000000', resource: condition },
      ...Array.from({ length: 6_000 }, (_, i) => ({
        fullUrl: `urn:uuid:00000000-0000-5000-8000-${String(i + 1).padStart(12, '0')}`,
        resource: { resourceType: 'Basic' as const, id: String(i), code: { text: `Größe „${'y'.repeat(800)}“ ${i}` } },
      })),
    ],
  };
}

/**
 * `db` whose transactions fail the INSERT of part `n`: `server` sends a NULL part (PostgreSQL refuses
 * it, NOT NULL, and every later statement of the transaction), `driver` rejects at once without
 * sending it (before the caller can have awaited it).
 */
function refusingPart(db: Database, n: number, where: 'server' | 'driver'): Database {
  const wrap = (tx: Queryable): Queryable => ({
    query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const refused = sql.includes('INSERT INTO case_bundle_parts') && params[2] === n;
      if (refused && where === 'driver') return Promise.reject(new Error('null value refused by the driver'));
      return tx.query<R>(sql, refused ? [...params.slice(0, 3), null] : params);
    },
    exec: (sql: string) => tx.exec(sql),
  });
  return {
    backend: db.backend,
    query: <R>(sql: string, params?: readonly unknown[]) => db.query<R>(sql, params),
    exec: (sql: string) => db.exec(sql),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => db.transaction((tx) => fn(wrap(tx))),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}

describe.each(['postgres', 'pglite'] as const)('case bundle parts on %s', (backend) => {
  let db: Database;
  let handle: Awaited<ReturnType<typeof openBackendDatabase>> | undefined;

  beforeAll(async () => {
    handle = await openBackendDatabase(backend);
    db = handle.db;
  }, 60_000);

  afterAll(async () => {
    await handle?.close();
  });

  async function newCase(): Promise<string> {
    const caseId = randomUUID();
    await insertTestCase(db, caseId);
    return caseId;
  }

  async function recordCodes(caseId: string): Promise<string[]> {
    const record = await findCase(db, caseId);
    if (!record) throw new Error('no case');
    return (await caseDiagnosisCodes(db, record)).filter((c) => c.system === CONDITION_SYSTEM).map((c) => c.code);
  }

  it('stores a large bundle as parts (bundle NULL) that read back as the exact JSON.stringify text', async () => {
    const caseId = await newCase();
    const bundle = largeBundle('c-1');
    const version = await insertBundleVersion(db, { caseId, bundleId: 'b1', bundle, report: { ok: true }, options: {}, trigger: 'test' });
    expect(version).toBe(1);
    const { rows } = await db.query<{ parts: number; nulls: number }>(
      `SELECT (SELECT count(*) FROM case_bundle_parts WHERE case_id = $1 AND version = 1) AS parts,
              (SELECT count(*) FROM case_bundles WHERE case_id = $1 AND version = 1 AND bundle IS NULL) AS nulls`,
      [caseId],
    );
    expect(rows[0]?.parts).toBeGreaterThan(3);
    expect(rows[0]?.nulls).toBe(1);
    const stored = await findBundleJson(db, caseId);
    expect(stored).toMatchObject({ caseId, version: 1, report: { ok: true }, trigger: 'test' });
    expect(stored?.json).toBe(JSON.stringify(bundle));
    expect((await findBundle(db, caseId, 1))?.bundle).toEqual(bundle);
    expect(await recordCodes(caseId)).toEqual(['c-1']);
  });

  it('stores parts given as UTF-8 bytes (what the assembly thread hands over) as the same text', async () => {
    const caseId = await newCase();
    const bundle = largeBundle('c-bytes');
    const whole = JSON.stringify(bundle);
    await insertBundleVersion(db, { caseId, bundleId: 'b1', parts: bundleJsonByteParts(bundle), report: {}, options: {}, trigger: 'test' });
    const { rows } = await db.query<{ parts: number }>('SELECT count(*)::int AS parts FROM case_bundle_parts WHERE case_id = $1', [caseId]);
    expect(rows[0]?.parts).toBeGreaterThan(3);
    expect((await findBundleJson(db, caseId))?.json).toBe(whole);
    expect((await readBundleHead(db, caseId))?.bundle.entry?.[0]?.resource?.resourceType).toBe('Condition');
    expect(await recordCodes(caseId)).toEqual(['c-bytes']);
  });

  it('refuses a bytes part that is not UTF-8, storing nothing of the version', async () => {
    const caseId = await newCase();
    const broken = Buffer.from('{"resourceType":"Bundle","entry":[{"x":"\xff"}]}', 'latin1');
    await expect(insertBundleVersion(db, { caseId, bundleId: 'b1', parts: [broken], report: {}, options: {}, trigger: 'test' })).rejects.toThrow(/UTF8|encoding/i);
    expect(await findBundleJson(db, caseId)).toBeUndefined();
  });

  it('streams a version as its parts, a few per query, never joined', async () => {
    const caseId = await newCase();
    const bundle = largeBundle('c-stream');
    await insertBundleVersion(db, { caseId, bundleId: 'b1', bundle, report: {}, options: {}, trigger: 'test' });
    const text = await openBundleText(db, caseId, undefined, 2);
    expect(text?.version).toBe(1);
    const chunks: string[] = [];
    for await (const chunk of text?.chunks ?? []) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.join('')).toBe(JSON.stringify(bundle));
    expect(await openBundleText(db, caseId, 2)).toBeUndefined();
  });

  it('compresses parts with LZ4 where the server has it', async () => {
    const { rows } = await db.query<{ lz4: boolean; method: string }>(
      `SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) AS lz4,
              (SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'case_bundle_parts'::regclass AND attname = 'part') AS method`,
    );
    expect(rows[0]?.method).toBe(rows[0]?.lz4 ? 'l' : '');
  });

  it('still reads versions stored as one json value (before migration 008)', async () => {
    const caseId = await newCase();
    const old = largeBundle('c-old');
    await db.query(
      `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger) VALUES ($1, 1, 'old', $2::json, '{}', '{}', 'old')`,
      [caseId, JSON.stringify(old)],
    );
    expect((await findBundleJson(db, caseId))?.json).toBe(JSON.stringify(old));
    expect((await findBundle(db, caseId))?.bundle).toEqual(old);
    expect(await recordCodes(caseId)).toEqual(['c-old']);
    // A new version beside it is stored as parts; both stay readable.
    const next = largeBundle('c-new');
    expect(await insertBundleVersion(db, { caseId, bundleId: 'new', bundle: next, report: {}, options: {}, trigger: 'test' })).toBe(2);
    expect((await findBundle(db, caseId, 1))?.bundle).toEqual(old);
    expect((await findBundleJson(db, caseId))?.json).toBe(JSON.stringify(next));
    expect(await recordCodes(caseId)).toEqual(['c-new']);
  });

  it('answers undefined for a missing version and stores a bundle without entries', async () => {
    const caseId = await newCase();
    expect(await findBundleJson(db, caseId)).toBeUndefined();
    const small: Bundle = { resourceType: 'Bundle', type: 'document' };
    await insertBundleVersion(db, { caseId, bundleId: 's', bundle: small, report: {}, options: {}, trigger: 'test' });
    expect((await findBundleJson(db, caseId, 1))?.json).toBe(JSON.stringify(small));
    expect(await findBundle(db, caseId, 2)).toBeUndefined();
    expect(await recordCodes(caseId)).toEqual([]);
  });

  it.each(['server', 'driver'] as const)('rolls the whole version back when a part is refused (by the %s)', async (where) => {
    const caseId = await newCase();
    await expect(
      insertBundleVersion(refusingPart(db, 1, where), { caseId, bundleId: 'x', bundle: largeBundle('c-x'), report: {}, options: {}, trigger: 'test' }),
    ).rejects.toThrow(/null value/);
    const { rows } = await db.query<{ n: number }>(
      'SELECT (SELECT count(*) FROM case_bundles WHERE case_id = $1) + (SELECT count(*) FROM case_bundle_parts WHERE case_id = $1) AS n',
      [caseId],
    );
    expect(rows[0]?.n).toBe(0);
    // The connection is usable again and the version number was not used up.
    expect(await insertBundleVersion(db, { caseId, bundleId: 'y', bundle: largeBundle('c-y'), report: {}, options: {}, trigger: 'test' })).toBe(1);
  });

  it('rolls back when serialising a part fails while an INSERT is running', async () => {
    const caseId = await newCase();
    const bundle = largeBundle('c-z');
    // JSON.stringify throws on a BigInt: the entry sits past the first part.
    bundle.entry?.push({ resource: { resourceType: 'Basic', code: { text: BigInt(1) } } as unknown as Condition });
    await expect(insertBundleVersion(db, { caseId, bundleId: 'z', bundle, report: {}, options: {}, trigger: 'test' })).rejects.toThrow(TypeError);
    const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM case_bundles WHERE case_id = $1', [caseId]);
    expect(rows[0]?.n).toBe(0);
  });

  it('refuses a version whose read began before that of a version already stored, writing nothing', async () => {
    const caseId = await newCase();
    const small = (code: string): Bundle => ({ resourceType: 'Bundle', type: 'document', entry: [{ fullUrl: 'urn:uuid:00000000-0000-5000-8000-000000000001', resource: { resourceType: 'Basic', code: { text: code } } }] });
    const earlier = await takeReadSeq(db);
    const later = await takeReadSeq(db);
    expect(later).toBeGreaterThan(earlier);
    expect(await insertBundleVersion(db, { caseId, bundleId: 'later', bundle: small('later'), report: {}, options: {}, trigger: 'test', readSeq: later })).toBe(1);
    const refused = insertBundleVersion(db, { caseId, bundleId: 'earlier', bundle: small('earlier'), report: {}, options: {}, trigger: 'test', readSeq: earlier });
    await expect(refused).rejects.toThrow(StaleAssemblyError);
    await expect(refused).rejects.toMatchObject({ caseId, newerVersion: 1 });
    const { rows } = await db.query<{ versions: number; parts: number }>(
      `SELECT (SELECT count(*)::int FROM case_bundles WHERE case_id = $1) AS versions, (SELECT count(*)::int FROM case_bundle_parts WHERE case_id = $1) AS parts`,
      [caseId],
    );
    expect(rows[0]).toEqual({ versions: 1, parts: 1 });
    // A read after the stored one's is stored on top of it; another case is not concerned.
    expect(await insertBundleVersion(db, { caseId, bundleId: 'next', bundle: small('next'), report: {}, options: {}, trigger: 'test', readSeq: await takeReadSeq(db) })).toBe(2);
    expect(await insertBundleVersion(db, { caseId: await newCase(), bundleId: 'other', bundle: small('other'), report: {}, options: {}, trigger: 'test', readSeq: earlier })).toBe(1);
  });

  it('refuses a version whose inherited dedupe rules a version stored meanwhile changed', async () => {
    const caseId = await newCase();
    const bundle: Bundle = { resourceType: 'Bundle', type: 'document', entry: [] };
    const store = (disabledRules: readonly string[], inheritedRules?: { fromVersion: number; disabledRules: readonly string[] }) =>
      insertBundleVersion(db, { caseId, bundleId: randomUUID(), bundle, report: {}, options: { disabledRules }, trigger: 'test', ...(inheritedRules ? { inheritedRules } : {}) });
    expect(await store([])).toBe(1);
    expect(await latestDisabledRules(db, caseId)).toEqual({ fromVersion: 1, disabledRules: [] });
    // A rebuild switches a rule off (version 2) while an assembly that inherited version 1's rules runs.
    expect(await store(['observation:code-time-value'])).toBe(2);
    await expect(store([], { fromVersion: 1, disabledRules: [] })).rejects.toMatchObject({ name: 'StaleAssemblyError', newerVersion: 2 });
    // Read again, it inherits the rule from version 2 and is stored.
    const inherited = await latestDisabledRules(db, caseId);
    expect(inherited).toEqual({ fromVersion: 2, disabledRules: ['observation:code-time-value'] });
    expect(await store([...inherited.disabledRules], inherited)).toBe(3);
    // A version stored meanwhile with the same rules does not concern it.
    expect(await store(['observation:code-time-value'], inherited)).toBe(4);
  });

  it('deletes the parts with their version', async () => {
    const caseId = await newCase();
    await insertBundleVersion(db, { caseId, bundleId: 'd', bundle: largeBundle('c-d'), report: {}, options: {}, trigger: 'test' });
    await db.query('DELETE FROM case_bundles WHERE case_id = $1', [caseId]);
    const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM case_bundle_parts WHERE case_id = $1', [caseId]);
    expect(rows[0]?.n).toBe(0);
  });
});
