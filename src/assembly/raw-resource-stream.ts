/**
 * Reads a case's raw resources from the raw store in batches through one cursor, instead of in one
 * query result.
 *
 * Why batches: one result for a 50,000-resource case holds every row twice at once in the driver
 * (the received text and the parsed rows) on top of what assembly builds from them; a cursor keeps
 * one batch of wire data alive.
 *
 * Why a cursor in the table's own order: the rows are read in the order PostgreSQL finds them (a
 * bitmap scan of the case's rows, page by page), not sorted by key. Assembly does not depend on the
 * order of its input (normalize sorts what it builds; `versions.ts` picks the latest version by a
 * total order), and reading in key order cost PostgreSQL an index scan with a heap page visit per row
 * plus a sort per batch: 50,000 rows of the bench case took 770–890 ms of PostgreSQL CPU in keyset
 * batches against 160–270 ms through the cursor, and 0.84–0.91 s against 0.38–0.54 s of wall time
 * (2026-12-01, a slow hour). The cursor also reads one snapshot: a pull committing pages meanwhile
 * adds nothing to an assembly already reading (keyset batches could see rows committed between
 * them, which was harmless too, as raw rows are only ever inserted). The price is a connection held
 * for the read: on PGlite, the service's only one, so its other queries wait until the read ends
 * (which, as the reader keeps pace with the assembly thread's parsing, is about that parse: ~1 s for
 * 50,000 resources; tens of milliseconds for a usual case). PostgreSQL has a pool.
 *
 * The resource comes as its stored text (`resource::text`), left unparsed: it is parsed where it is
 * normalized, in the assembly thread (`build-assembly.ts`), not on this (the event loop's) thread.
 * `fetched_at` comes as ISO text: the driver's own `json` and `timestamptz` parsers spent ~40 % more
 * CPU on the same rows (measured 2026-11-28).
 * @see https://www.postgresql.org/docs/15/sql-declare.html
 * @packageDocumentation
 */
import type { Database, Queryable } from '../db/database';
import type { RawText } from './build-assembly';

/** Rows per batch (about 1–3 MB of resource JSON each). */
export const RAW_BATCH_SIZE = 2_000;

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

/**
 * `fetched_at` as `Date.prototype.toISOString()` writes it (UTC, milliseconds truncated as the driver's
 * Date would), formatted by PostgreSQL: parsing 50,000 timestamps into Dates cost ~60 ms here.
 */
const FETCHED_AT_ISO = `to_char(r.fetched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The cursor's name: one per transaction, so a fixed name cannot collide. */
const CURSOR = 'raw_resources_of_case';

/** How many raw resources the case holds (an index-only count: the resource JSON is not touched). */
export async function countRawResources(db: Queryable, caseId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId]);
  return rows[0]?.n ?? 0;
}

function rawTextOf(r: RawRow): RawText {
  return {
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

/**
 * Hands every raw resource of the case to `onBatch`, `batchSize` at a time (the last batch may be
 * smaller; none is empty), each with its JSON text as stored, in no particular order; see the
 * module comment. The next batch is fetched once `onBatch` has resolved (the reader's flow control).
 * @returns how many raw resources were read
 */
export async function readRawResources(db: Database, caseId: string, onBatch: (batch: RawText[]) => void | Promise<void>, batchSize = RAW_BATCH_SIZE): Promise<number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, not ${batchSize}`);
  return db.transaction(async (tx) => {
    await tx.query(
      `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
       SELECT r.source_id, r.resource_type, r.remote_id, r.version_id, ${FETCHED_AT_ISO} AS fetched_at, r.sha256, r.resource::text AS resource_json,
              t.remote_patient_id AS pulled_for
       FROM raw_resources r LEFT JOIN pull_tasks t ON t.id = r.task_id
       WHERE r.case_id = $1`,
      [caseId],
    );
    let read = 0;
    for (;;) {
      const { rows } = await tx.query<RawRow>(`FETCH FORWARD ${batchSize} FROM ${CURSOR}`);
      if (rows.length === 0) return read;
      read += rows.length;
      await onBatch(rows.map(rawTextOf));
      if (rows.length < batchSize) return read;
    }
  });
}
