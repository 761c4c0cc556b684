/**
 * The order of overlapping assemblies of one case (migration 017): each takes a number from
 * `assembly_read_seq` before it reads the raw store, and its version is stored only while no version
 * of the case read later is stored already, and (for an assembly that took its switched-off dedupe
 * rules from the latest version) while no version stored since switched off other rules. Otherwise
 * {@link StaleAssemblyError}: the assembly reads again (`assemble.ts`). Checked under the case row
 * lock that serialises versions (`insertBundleVersion`).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { sameMembers } from '../util/same-members';

/** Dedupe rules switched off, as the case's latest version had them. */
export interface InheritedRules {
  readonly fromVersion: number;
  readonly disabledRules: readonly string[];
}

/**
 * Another assembly of the case began reading after this one and has stored its version already: this
 * one's bundle may lack what that one saw (a source removed, newer records), so it must not become the
 * latest version. The caller reads again.
 */
export class StaleAssemblyError extends Error {
  constructor(readonly caseId: string, readonly newerVersion: number) {
    super(`Case ${caseId}: bundle version ${newerVersion} was stored while this assembly ran, read later or with other dedupe rules switched off`);
    this.name = 'StaleAssemblyError';
  }
}

/**
 * The next number of the order in which assemblies begin reading the raw store (a sequence: never
 * rolled back, increasing across connections). Taken before the first read of an assembly.
 */
export async function takeReadSeq(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ seq: string }>("SELECT nextval('assembly_read_seq')::text AS seq");
  const seq = Number(rows[0]?.seq);
  if (!Number.isSafeInteger(seq)) throw new Error('assembly_read_seq gave no number');
  return seq;
}

/** Throws {@link StaleAssemblyError} when a version of the case was stored from a read after `readSeq`. */
export async function refuseIfReadLater(tx: Queryable, caseId: string, readSeq: number): Promise<void> {
  const { rows } = await tx.query<{ version: number }>(
    'SELECT version FROM case_bundles WHERE case_id = $1 AND read_seq > $2 ORDER BY version DESC LIMIT 1',
    [caseId, readSeq],
  );
  const newer = rows[0]?.version;
  if (newer !== undefined) throw new StaleAssemblyError(caseId, newer);
}

/** The rule names of a version's `options.disabledRules` (anything else: none). */
const rulesOf = (value: unknown): string[] => (Array.isArray(value) ? value.filter((r): r is string => typeof r === 'string') : []);

/** The dedupe rules switched off for the case's latest version (none before the first version). */
export async function latestDisabledRules(db: Queryable, caseId: string): Promise<InheritedRules> {
  const { rows } = await db.query<{ version: number; rules: unknown }>(
    `SELECT version, options->'disabledRules' AS rules FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1`,
    [caseId],
  );
  const row = rows[0];
  return { fromVersion: row?.version ?? 0, disabledRules: rulesOf(row?.rules) };
}

/** Throws {@link StaleAssemblyError} when a version after `inherited.fromVersion` switched off other rules. */
export async function refuseIfRulesChanged(tx: Queryable, caseId: string, inherited: InheritedRules): Promise<void> {
  const { rows } = await tx.query<{ version: number; rules: unknown }>(
    `SELECT version, options->'disabledRules' AS rules FROM case_bundles WHERE case_id = $1 AND version > $2 ORDER BY version DESC`,
    [caseId, inherited.fromVersion],
  );
  for (const row of rows) {
    if (!sameMembers(rulesOf(row.rules), inherited.disabledRules)) throw new StaleAssemblyError(caseId, row.version);
  }
}
