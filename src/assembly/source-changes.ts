/**
 * Source changes the case record does not show yet. A source removed from the case (the wrong care
 * team) or pointed at another child (the first match was wrong) must take its records out of the
 * bundle at once: they may be another child's. The change assembles the bundle again in the same
 * request; until a version without those records is stored — that assembly failed, the process died,
 * or it is still running — the latest version must not be served as the case's current record.
 *
 * How it is known, without reading the bundle: each such change takes a number of the order in which
 * assemblies begin reading (`assembly_read_seq`, kept in `case_sources.changed_read_seq`) in its
 * transaction, and an assembly reads the sources under a share lock (`assembly-input.ts`), so an
 * assembly that took a later number waits for the change to commit and sees it. A version whose
 * `read_seq` is below a source's number may therefore still hold that source's records. (One that
 * took its number earlier but read after the commit is fresh, yet counted as not: the safe side.)
 */
import { STATUS_CODES } from 'node:http';
import type { Queryable } from '../db/database';
import { conflict, HttpProblem } from '../http/problem';
import { errorFields, logger } from '../log';
import { recordEvent, recordEventOnce } from '../notify/events';
import { assembleCase, type AssembleDeps } from './assemble';

/** What happened to a source after the latest version read the raw store. */
export type SourceChangeKind = 'removed' | 'patient-changed';

/** A source change the latest bundle version does not show. */
export interface PendingSourceChange {
  readonly sourceId: string;
  readonly change: SourceChangeKind;
}

/** The latest bundle version and the source changes made after it read the raw store. */
export interface OutdatedRecords {
  readonly version: number;
  readonly changes: readonly PendingSourceChange[];
}

/**
 * Records, in the caller's transaction (the one making the change), that the source's records must
 * leave the bundle: it takes the next number of the assembly read order.
 */
export async function markSourceChanged(tx: Queryable, sourceId: string): Promise<void> {
  await tx.query("UPDATE case_sources SET changed_read_seq = nextval('assembly_read_seq') WHERE id = $1", [sourceId]);
}

/**
 * The case's latest bundle version, when a source changed after it read the raw store (its records
 * may still be in it); undefined when the latest version shows every change, or there is none.
 */
export async function outdatedRecords(db: Queryable, caseId: string): Promise<OutdatedRecords | undefined> {
  const { rows } = await db.query<{ version: number; source_id: string; removed: boolean }>(
    `SELECT b.version, s.id AS source_id, s.state = 'removed' AS removed
     FROM (SELECT version, read_seq FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1) b
     JOIN case_sources s ON s.case_id = $1 AND s.changed_read_seq > b.read_seq
     ORDER BY s.created_at, s.id`,
    [caseId],
  );
  const first = rows[0];
  if (!first) return undefined;
  return { version: first.version, changes: rows.map((r) => ({ sourceId: r.source_id, change: r.removed ? 'removed' : 'patient-changed' })) };
}

const CHANGE_TEXT: Readonly<Record<SourceChangeKind, string>> = {
  removed: 'was removed from the case',
  'patient-changed': 'now points at another patient',
};

/** The changes in words: "source X was removed from the case, source Y now points at another patient". */
export function describeSourceChanges(changes: readonly PendingSourceChange[]): string {
  return changes.map((c) => `source ${c.sourceId} ${CHANGE_TEXT[c.change]}`).join(', ');
}

/**
 * 409 for a read of the current record (or work resting on it) while it is outdated: names the
 * version, the changes, and what brings it up to date. Older versions stay readable by number.
 */
export function outdatedRecordsProblem(caseId: string, outdated: OutdatedRecords): HttpProblem {
  return conflict(
    `The case record (bundle version ${outdated.version}) may still hold records that must leave it: ${describeSourceChanges(outdated.changes)} after it was assembled. ` +
      `It is being assembled again; if this persists, a case manager rebuilds it (POST /api/cases/${caseId}/bundle/rebuild) or sends the source change again. ` +
      `Version ${outdated.version} itself stays readable with ?version=${outdated.version}.`,
    { outdatedVersion: outdated.version, sourceChanges: outdated.changes },
  );
}

/** Throws {@link outdatedRecordsProblem} (409) while the case's latest version is outdated by a source change. */
export async function refuseOutdatedRecords(db: Queryable, caseId: string): Promise<void> {
  const outdated = await outdatedRecords(db, caseId);
  if (outdated) throw outdatedRecordsProblem(caseId, outdated);
}

/**
 * The cases whose latest bundle version a source change outdated ({@link outdatedRecords}), with that
 * version, oldest change first.
 */
export async function casesWithOutdatedRecords(db: Queryable): Promise<{ caseId: string; version: number }[]> {
  const { rows } = await db.query<{ case_id: string; version: number }>(
    `SELECT s.case_id::text AS case_id, latest.version
     FROM case_sources s
     JOIN LATERAL (SELECT version, read_seq FROM case_bundles b WHERE b.case_id = s.case_id ORDER BY b.version DESC LIMIT 1) latest ON true
     WHERE s.changed_read_seq > latest.read_seq
     GROUP BY s.case_id, latest.version
     ORDER BY min(s.changed_read_seq)`,
  );
  return rows.map((r) => ({ caseId: r.case_id, version: r.version }));
}

/** The trigger of an assembly the reconciler runs for a source change whose own assembly never ended. */
export const SOURCE_CHANGE_RECONCILE_TRIGGER = 'source-change-reconcile';

/**
 * The reconciler's part for source changes: a source change assembles the case again in its own
 * request ({@link assembleAfterSourceChange}); when that process died or was stopped during the
 * assembly, nothing else would, and the case record stayed unserved (409) with nobody told. Each call
 * (one per reconcile run) assembles again the cases it found outdated, at the same version, on the
 * call before too: at least a reconcile interval later, so a request still assembling is not raced
 * (and were it, overlapping assemblies are ordered by what they read, `assembly-order.ts`). A failure
 * is told to the case managers once per outdated version, and does not stop the other cases.
 * @returns a function answering how many cases got a new version
 */
export function reassemblerOfOutdatedRecords(deps: AssembleDeps): () => Promise<number> {
  let seenLastTime = new Set<string>();
  return async () => {
    const seenNow = new Set<string>();
    let assembled = 0;
    for (const { caseId, version } of await casesWithOutdatedRecords(deps.db)) {
      const key = `${caseId}:${version}`;
      seenNow.add(key);
      if (!seenLastTime.has(key)) continue;
      try {
        await assembleCase(deps, caseId, { trigger: SOURCE_CHANGE_RECONCILE_TRIGGER });
        assembled += 1;
      } catch (err) {
        logger.warn('outdated case record not assembled again by the reconciler', { caseId, ...errorFields(err) });
        const reason = err instanceof HttpProblem ? err.detail : `the assembly failed (${errorFields(err).errorName})`;
        await recordEventOnce(deps.db, 'assembly.failed', caseId, { caseId, trigger: `${SOURCE_CHANGE_RECONCILE_TRIGGER}:v${version}`, reason, outdatedVersion: version }, 'trigger');
      }
    }
    seenLastTime = seenNow;
    return assembled;
  };
}

/**
 * After a source change whose records must leave the bundle (a removed source, another child chosen):
 * the specialist must not go on seeing them, so a case whose latest version predates the change is
 * assembled again now. Called again after that assembly failed (the same request sent again), it
 * assembles again. A failure is told to the case managers (`assembly.failed`) and thrown as the error
 * it is, saying that the change stands; until a version without the records is stored, the current
 * record is not served.
 * @returns the version assembled now; undefined when the latest version already shows every change
 */
export async function assembleAfterSourceChange(deps: AssembleDeps, caseId: string, trigger: string): Promise<number | undefined> {
  const outdated = await outdatedRecords(deps.db, caseId);
  if (!outdated) return undefined;
  try {
    return (await assembleCase(deps, caseId, { trigger })).version;
  } catch (err) {
    const reason = err instanceof HttpProblem ? err.detail : `the assembly failed (${errorFields(err).errorName})`;
    logger.error('case not assembled again after a source change', { caseId, trigger, ...errorFields(err) });
    await recordEvent(deps.db, 'assembly.failed', caseId, { caseId, trigger, reason, outdatedVersion: outdated.version });
    const status = err instanceof HttpProblem ? err.status : 503;
    throw new HttpProblem(
      status,
      STATUS_CODES[status] ?? 'Error',
      `The change is made (${describeSourceChanges(outdated.changes)}), but the case record could not be assembled again without those records: ${reason} ` +
        `Until it is, the current record is not served. Send this request again, or rebuild the bundle (POST /api/cases/${caseId}/bundle/rebuild).`,
      [],
      { outdatedVersion: outdated.version, sourceChanges: outdated.changes },
    );
  }
}
