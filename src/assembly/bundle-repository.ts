import type { Bundle } from 'fhir/r4';
import type { Database, Queryable } from '../db/database';
import { CASE_ROW_LOCK } from '../db/case-repository';
import { refuseIfReadLater, refuseIfRulesChanged, type InheritedRules } from './assembly-order';
import { bundleJsonParts } from './bundle-json';

/** Which version of a case's bundle, when and why it was assembled. */
export interface BundleVersionMeta {
  readonly caseId: string;
  readonly version: number;
  /** The Bundle's `identifier.value`: new with every assembly, never reused. */
  readonly bundleId: string;
  readonly trigger: string;
  readonly createdAt: Date;
}

export interface StoredBundle extends BundleVersionMeta {
  readonly bundle: Bundle;
  readonly report: unknown;
}

/** A stored bundle version as its JSON text, unparsed (to serve it as stored). */
export interface StoredBundleJson extends Omit<StoredBundle, 'bundle'> {
  readonly json: string;
}

/** A part of a bundle's text: a string, or its UTF-8 bytes (`bundleJsonByteParts`). */
export type BundlePart = string | Uint8Array;

/**
 * The version's content: the Bundle (serialised here), or its text already cut into parts, never
 * inside an entry (`bundleJsonParts`, `bundleJsonByteParts`).
 */
type BundleContent =
  | { readonly bundle: Bundle; readonly parts?: undefined }
  | { readonly parts: Iterable<BundlePart> | AsyncIterable<BundlePart>; readonly bundle?: undefined };

type NewBundleVersion = BundleContent & {
  readonly caseId: string;
  readonly bundleId: string;
  readonly report: unknown;
  readonly options: unknown;
  readonly trigger: string;
  /**
   * The assembly's place in the order of reads (`takeReadSeq`, taken before it read anything).
   * Given, the version is stored only if no version of the case was read later (else
   * `StaleAssemblyError`); omitted (tests storing a made-up bundle), no such check.
   */
  readonly readSeq?: number;
  /**
   * The assembly took its switched-off dedupe rules from the case's version `fromVersion` (0: the
   * case had none): it is refused (`StaleAssemblyError`) when a version stored since then
   * switched off other rules (a case manager's rebuild), so it cannot undo that choice.
   */
  readonly inheritedRules?: InheritedRules;
};

/** The version stored for `trigger` (the first, should there be several); undefined when none is. */
export async function bundleVersionFor(db: Queryable, caseId: string, trigger: string): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM case_bundles WHERE case_id = $1 AND trigger = $2 ORDER BY version LIMIT 1', [caseId, trigger]);
  return rows[0]?.version;
}

/** Whether the case has a bundle version at all, or one assembled for `trigger` (idempotent jobs). */
export async function hasBundleVersion(db: Queryable, caseId: string, trigger?: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM case_bundles WHERE case_id = $1${trigger === undefined ? '' : ' AND trigger = $2'} LIMIT 1`,
    trigger === undefined ? [caseId] : [caseId, trigger],
  );
  return rows.length > 0;
}

const INSERT_PART = 'INSERT INTO case_bundle_parts (case_id, version, n, part) VALUES ($1, $2, $3, $4)';
/**
 * A part sent as its UTF-8 bytes (a binary parameter: the driver writes the buffer as it is, with
 * no string made of it in this process); PostgreSQL checks the encoding as it turns it into text.
 */
const INSERT_PART_UTF8 = "INSERT INTO case_bundle_parts (case_id, version, n, part) VALUES ($1, $2, $3, convert_from($4::bytea, 'UTF8'))";

/**
 * Stores an assembly as the case's next bundle version (versions are never overwritten).
 *
 * The bundle's JSON text is stored as its parts (~1 MB each: {@link bundleJsonParts} here for a
 * `bundle`, or as given, e.g. the assembly thread's UTF-8 parts from `bundleJsonByteParts`), one
 * `case_bundle_parts` row per part, written while the next part is being serialised: PostgreSQL
 * stores (and LZ4-compresses, where it has LZ4) part n while Node stringifies part n+1, instead of
 * re-parsing and compressing the whole ~100 MB document as one `json` value after Node is done.
 * This process never holds the whole text nor the driver's copy of it. The parts concatenated are
 * the text `JSON.stringify(bundle)` gives; the `case_bundles` row keeps `bundle` NULL.
 *
 * One transaction: the version row and all its parts are committed together or not at all, with what
 * `alsoInTransaction` writes (the event announcing the version). With `readSeq`, refused
 * (`StaleAssemblyError`) before anything is written when a version read later is stored already.
 */
export async function insertBundleVersion(db: Database, v: NewBundleVersion, alsoInTransaction?: (tx: Queryable, version: number) => Promise<void>): Promise<number> {
  return db.transaction(async (tx) => {
    // Serialise versions per case (two assemblies at once get consecutive versions).
    await tx.query(`SELECT id FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`, [v.caseId]);
    if (v.readSeq !== undefined) await refuseIfReadLater(tx, v.caseId, v.readSeq);
    if (v.inheritedRules !== undefined) await refuseIfRulesChanged(tx, v.caseId, v.inheritedRules);
    const version = await insertVersionRow(tx, v);
    await insertParts(tx, v.caseId, version, v.parts ?? bundleJsonParts(v.bundle));
    await alsoInTransaction?.(tx, version);
    return version;
  });
}

/** The `case_bundles` row of the next version (its text goes to `case_bundle_parts`). */
async function insertVersionRow(tx: Queryable, v: NewBundleVersion): Promise<number> {
  const { rows } = await tx.query<{ version: number }>(
    `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger, read_seq)
     SELECT $1, COALESCE(max(version), 0) + 1, $2, NULL, $3, $4, $5, $6 FROM case_bundles WHERE case_id = $1
     RETURNING version`,
    [v.caseId, v.bundleId, JSON.stringify(v.report), JSON.stringify(v.options), v.trigger, v.readSeq ?? null],
  );
  const version = rows[0]?.version;
  if (version === undefined) throw new Error(`No bundle version was inserted for case ${v.caseId}`);
  return version;
}

/**
 * Inserts the parts as rows `n = 0, 1, …`, serialising part n+1 while PostgreSQL stores part n.
 *
 * One INSERT is outstanding at a time, plus the next part ready in memory: a connection runs one
 * statement at a time and the driver can only send the next one when Node's event loop runs, i.e.
 * once the serialisation under way has finished, so a deeper queue would not overlap more (and
 * `pg` 8 deprecates queuing queries on a busy client; `pg` 9 refuses it).
 *
 * On a failure (of an INSERT, or serialising a part) the outstanding INSERT is let finish before the
 * error is rethrown: the transaction must not roll back (or PGlite close it) with a statement of it
 * still running.
 */
async function insertParts(tx: Queryable, caseId: string, version: number, parts: Iterable<BundlePart> | AsyncIterable<BundlePart>): Promise<void> {
  let running: Promise<unknown> | undefined;
  try {
    let n = 0;
    // Each step of the iterator serialises the next part (here, or in the assembly thread), while `running` is stored.
    for await (const part of parts) {
      if (running) await running;
      running = handled(
        typeof part === 'string'
          ? tx.query(INSERT_PART, [caseId, version, n++, part])
          : tx.query(INSERT_PART_UTF8, [caseId, version, n++, Buffer.from(part.buffer, part.byteOffset, part.byteLength)]),
      );
      await nextIoTurn();
    }
    await running;
  } catch (err) {
    await running?.catch(() => undefined);
    throw err;
  }
}

/**
 * `promise` itself, marked as handled: it may reject during {@link nextIoTurn} or while a part is
 * serialised, before it is awaited; without a handler attached from the start that rejection would
 * be reported as unhandled (which ends the process).
 */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Lets the event loop run once before the next part is serialised (synchronous, several ms), so the
 * driver can flush what the socket did not take of the part just sent and read PostgreSQL's replies.
 */
function nextIoTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A bundle version as its stored JSON text, not parsed: the text of the parts joined in order, or
 * for versions stored before parts existed, the `bundle` json value's text. Either way the text
 * `JSON.stringify` gave when it was assembled. To send it, prefer {@link openBundleText}.
 * @param version the latest version when undefined
 * @returns undefined when there is no such version
 */
export async function findBundleJson(db: Queryable, caseId: string, version?: number): Promise<StoredBundleJson | undefined> {
  const row = await findVersionRow(db, caseId, version, true);
  const text = row ? await openText(db, row, PARTS_PER_READ) : undefined;
  if (!row || !text) return undefined;
  const pieces: string[] = [];
  for await (const chunk of text.chunks) pieces.push(chunk);
  const { chunks: _chunks, ...meta } = text;
  return { ...meta, report: row.report, json: pieces.join('') };
}

/** A bundle version, parsed (see {@link findBundleJson}). */
export async function findBundle(db: Queryable, caseId: string, version?: number): Promise<StoredBundle | undefined> {
  const stored = await findBundleJson(db, caseId, version);
  if (!stored) return undefined;
  const { json, ...rest } = stored;
  return { ...rest, bundle: JSON.parse(json) as Bundle };
}

interface VersionRow {
  case_id: string;
  version: number;
  /** The old-form `bundle` value as text; null for versions stored as parts. */
  json: string | null;
  bundle_id: string;
  /** The completeness report, only when asked for (it is large for a large case). */
  report?: unknown;
  trigger: string;
  created_at: Date;
}

async function findVersionRow(db: Queryable, caseId: string, version: number | undefined, withReport = false): Promise<VersionRow | undefined> {
  const columns = `case_id, version, bundle_id, bundle::text AS json, trigger, created_at${withReport ? ', report' : ''}`;
  const { rows } = await db.query<VersionRow>(
    version === undefined
      ? `SELECT ${columns} FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1`
      : `SELECT ${columns} FROM case_bundles WHERE case_id = $1 AND version = $2`,
    version === undefined ? [caseId] : [caseId, version],
  );
  return rows[0];
}

/** Parts read per query when streaming a bundle (~8 MB of text). */
const PARTS_PER_READ = 8;

const metaOf = (row: VersionRow): BundleVersionMeta => ({
  caseId: row.case_id, version: row.version, bundleId: row.bundle_id, trigger: row.trigger, createdAt: row.created_at,
});

/** A bundle version found, its text not read yet (see {@link findBundleVersion}). */
export interface FoundBundleVersion {
  readonly meta: BundleVersionMeta;
  /** Opens its text as {@link openBundleText} does (undefined when the parts vanished meanwhile). */
  openText(partsPerRead?: number): Promise<BundleText | undefined>;
}

/**
 * A bundle version's metadata, its text read only when asked (`openText`): to answer a conditional
 * GET before anything is streamed, with one lookup of the version either way.
 * @param version the latest version when undefined
 */
export async function findBundleVersion(db: Queryable, caseId: string, version?: number): Promise<FoundBundleVersion | undefined> {
  const row = await findVersionRow(db, caseId, version);
  return row ? { meta: metaOf(row), openText: (partsPerRead = PARTS_PER_READ) => openText(db, row, partsPerRead) } : undefined;
}

/** A stored bundle version as a stream of text chunks (see {@link openBundleText}). */
export interface BundleText extends BundleVersionMeta {
  /** The chunks in order; concatenated, the text {@link findBundleJson} gives. */
  readonly chunks: AsyncGenerator<string, void, undefined>;
}

/**
 * A bundle version's JSON text as chunks, without ever holding it whole (a 50,000-resource case is
 * ~85 MB): the parts are read a few at a time, in order. The first read happens here, so a version
 * whose parts vanished (its case deleted meanwhile) is `undefined` before anything is sent.
 * @param version the latest version when undefined
 * @param partsPerRead parts fetched per query
 */
export async function openBundleText(db: Queryable, caseId: string, version?: number, partsPerRead = PARTS_PER_READ): Promise<BundleText | undefined> {
  return (await findBundleVersion(db, caseId, version))?.openText(partsPerRead);
}

/** The chunks of the version `row` (see {@link openBundleText}). */
async function openText(db: Queryable, row: VersionRow, partsPerRead: number): Promise<BundleText | undefined> {
  const stored = metaOf(row);
  const caseId = row.case_id;
  if (row.json !== null) {
    const json = row.json;
    return { ...stored, chunks: (async function* () { yield json; })() };
  }
  const readFrom = async (n: number): Promise<{ n: number; part: string }[]> =>
    (await db.query<{ n: number; part: string }>(
      'SELECT n, part FROM case_bundle_parts WHERE case_id = $1 AND version = $2 AND n >= $3 ORDER BY n LIMIT $4',
      [caseId, row.version, n, partsPerRead],
    )).rows;
  const first = await readFrom(0);
  if (first.length === 0) return undefined;
  async function* chunks(): AsyncGenerator<string, void, undefined> {
    let batch = first;
    while (batch.length > 0) {
      for (const r of batch) yield r.part;
      if (batch.length < partsPerRead) return;
      batch = await readFrom((batch[batch.length - 1]?.n ?? 0) + 1);
    }
  }
  return { ...stored, chunks: chunks() };
}

/** A bundle version's JSON text as one UTF-8 buffer (see {@link readBundleBytes}). */
export interface BundleBytes extends BundleVersionMeta {
  readonly bytes: Buffer;
}

/**
 * A bundle version's JSON text as UTF-8 bytes in one buffer, written part by part into a buffer of
 * the stored size (PostgreSQL knows each part's byte length without decompressing it): the text is
 * held once, as bytes, not as strings plus their copies.
 * @returns undefined when there is no such version
 */
export async function readBundleBytes(db: Queryable, caseId: string, version: number): Promise<BundleBytes | undefined> {
  const [text, size] = await Promise.all([
    openBundleText(db, caseId, version),
    db.query<{ bytes: string | null }>('SELECT sum(octet_length(part))::text AS bytes FROM case_bundle_parts WHERE case_id = $1 AND version = $2', [caseId, version]),
  ]);
  if (!text) return undefined;
  const { chunks, ...rest } = text;
  const total = Number(size.rows[0]?.bytes ?? 0);
  if (total === 0) {
    // A version stored before parts existed (one `json` value).
    const pieces: Buffer[] = [];
    for await (const chunk of chunks) pieces.push(Buffer.from(chunk, 'utf8'));
    return { ...rest, bytes: Buffer.concat(pieces) };
  }
  const bytes = Buffer.allocUnsafe(total);
  let at = 0;
  for await (const chunk of chunks) at += bytes.write(chunk, at, 'utf8');
  if (at !== total) throw new Error(`Bundle version ${version} of case ${caseId}: ${at} bytes read, ${total} stored`);
  return { ...rest, bytes };
}

/** The start of a stored bundle version: the Bundle with its first entries only (see {@link readBundleHead}). */
export interface BundleHead extends BundleVersionMeta {
  readonly bundle: Bundle;
}

/**
 * A bundle version's first entries — the Composition and its subject, which assembly writes first —
 * without reading the rest: the first stored part ends after a whole entry (`bundleJsonParts`), so
 * with the array and object closed it is the Bundle cut after that entry. A version in one part, or
 * stored before parts existed, is read whole.
 * @returns undefined when there is no such version
 */
export async function readBundleHead(db: Queryable, caseId: string, version?: number): Promise<BundleHead | undefined> {
  const row = await findVersionRow(db, caseId, version);
  if (!row) return undefined;
  const stored = metaOf(row);
  if (row.json !== null) return { ...stored, bundle: JSON.parse(row.json) as Bundle };
  const { rows } = await db.query<{ part: string; more: boolean }>(
    `SELECT part, EXISTS (SELECT 1 FROM case_bundle_parts WHERE case_id = $1 AND version = $2 AND n = 1) AS more
     FROM case_bundle_parts WHERE case_id = $1 AND version = $2 AND n = 0`,
    [caseId, row.version],
  );
  const first = rows[0];
  if (!first) return undefined;
  return { ...stored, bundle: JSON.parse(first.more ? `${first.part}]}` : first.part) as Bundle };
}

export async function findReport(db: Queryable, caseId: string): Promise<{ version: number; report: unknown } | undefined> {
  const { rows } = await db.query<{ version: number; report: unknown }>(
    'SELECT version, report FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1',
    [caseId],
  );
  return rows[0];
}
