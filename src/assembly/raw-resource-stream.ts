/**
 * Reads a case's raw resources from the raw store in batches, by keyset over the primary key
 * `(case_id, source_id, resource_type, remote_id, version_id)`, instead of in one query.
 *
 * Why: one query for a 50,000-resource case holds every row twice at once in the driver (the
 * received text and the parsed rows) on top of what assembly builds from them; batches keep only
 * one or two batches of wire data alive. The batch boundaries are read first (one key per
 * `batchSize` rows, an index scan that never touches the TOASTed resource JSON), so that two batch
 * queries can be in flight at once: PostgreSQL serializes the next batch while this process parses
 * the current one.
 *
 * The resource comes as its stored text (`resource::text`), left unparsed: it is parsed where it is
 * normalized, in the assembly thread (`build-assembly.ts`), not on this (the event loop's) thread.
 * `fetched_at` comes as ISO text: the driver's own `json` and `timestamptz` parsers spent ~40 % more
 * CPU on the same rows (measured 2026-11-28).
 *
 * The ranges cover the whole key space (the first is open below, the last open above), so a row is
 * read exactly once. Raw rows are only ever inserted, so a pull committing pages meanwhile can only
 * add rows, as it could between two assemblies.
 */
import type { Queryable } from '../db/database';
import type { RawText } from './build-assembly';

/** Rows per batch query (about 1–2 MB of resource JSON each). */
export const RAW_BATCH_SIZE = 2_000;

/** How many batch queries run at once (one parses here while the next is produced by PostgreSQL). */
const IN_FLIGHT = 2;

type Key = readonly [string, string, string, string];

interface RawRow {
  source_id: string;
  resource_type: string;
  remote_id: string;
  version_id: string;
  fetched_at: string;
  sha256: string;
  resource_json: string;
  pulled_for: string | null;
}

const KEY = '(r.source_id, r.resource_type, r.remote_id, r.version_id)';

/**
 * `fetched_at` as `Date.prototype.toISOString()` writes it (UTC, milliseconds truncated as the driver's
 * Date would), formatted by PostgreSQL: parsing 50,000 timestamps into Dates cost ~60 ms here.
 */
const FETCHED_AT_ISO = `to_char(r.fetched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** How many raw resources the case holds (an index-only count: the resource JSON is not touched). */
export async function countRawResources(db: Queryable, caseId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId]);
  return rows[0]?.n ?? 0;
}

/** The first key of every `batchSize`-th row in key order, after the first one. */
async function batchBoundaries(db: Queryable, caseId: string, batchSize: number): Promise<Key[]> {
  const { rows } = await db.query<{ source_id: string; resource_type: string; remote_id: string; version_id: string }>(
    `SELECT source_id, resource_type, remote_id, version_id FROM (
       SELECT source_id, resource_type, remote_id, version_id, row_number() OVER (ORDER BY source_id, resource_type, remote_id, version_id) AS n
       FROM raw_resources WHERE case_id = $1) k
     WHERE n > 1 AND (n - 1) % $2 = 0 ORDER BY n`,
    [caseId, batchSize],
  );
  return rows.map((r) => [r.source_id, r.resource_type, r.remote_id, r.version_id] as const);
}

/** Rows with key in `[from, to)`; `undefined` bounds are open. */
async function readRange(db: Queryable, caseId: string, from: Key | undefined, to: Key | undefined): Promise<RawText[]> {
  const params: unknown[] = [caseId];
  let where = 'r.case_id = $1';
  if (from) {
    params.push(...from);
    where += ` AND ${KEY} >= ($2, $3, $4, $5)`;
  }
  if (to) {
    const n = params.length;
    params.push(...to);
    where += ` AND ${KEY} < ($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4})`;
  }
  const { rows } = await db.query<RawRow>(
    `SELECT r.source_id, r.resource_type, r.remote_id, r.version_id, ${FETCHED_AT_ISO} AS fetched_at, r.sha256, r.resource::text AS resource_json,
            t.remote_patient_id AS pulled_for
     FROM raw_resources r LEFT JOIN pull_tasks t ON t.id = r.task_id
     WHERE ${where} ORDER BY r.source_id, r.resource_type, r.remote_id, r.version_id`,
    params,
  );
  const out = new Array<RawText>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as RawRow;
    out[i] = {
      sourceId: r.source_id,
      resourceType: r.resource_type,
      remoteId: r.remote_id,
      versionId: r.version_id,
      fetchedAt: r.fetched_at,
      sha256: r.sha256,
      resourceJson: r.resource_json,
      ...(r.pulled_for !== null ? { pulledForPatient: r.pulled_for } : {}),
    };
  }
  return out;
}

/**
 * The case's raw resources, batch after batch, in key order (source, type, remote id, version), each
 * with its JSON text as stored.
 */
export async function* rawResourceBatches(db: Queryable, caseId: string, batchSize = RAW_BATCH_SIZE): AsyncGenerator<RawText[], void, undefined> {
  const bounds = await batchBoundaries(db, caseId, batchSize);
  const ranges: [Key | undefined, Key | undefined][] = [];
  for (let i = 0; i <= bounds.length; i++) ranges.push([bounds[i - 1], bounds[i]]);
  const pending: Promise<RawText[]>[] = [];
  let next = 0;
  const fill = (): void => {
    while (pending.length < IN_FLIGHT && next < ranges.length) {
      const [from, to] = ranges[next++] ?? [undefined, undefined];
      const p = readRange(db, caseId, from, to);
      p.catch(() => undefined); // awaited below in order; no unhandled rejection meanwhile
      pending.push(p);
    }
  };
  fill();
  while (pending.length > 0) {
    const batch = await (pending.shift() as Promise<RawText[]>);
    fill();
    yield batch;
  }
}
