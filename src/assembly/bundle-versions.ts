/**
 * The versions of a case's bundle, as a history: when each was assembled and why (`trigger`: a pull,
 * a rebuild, an upload, a source removed or re-pointed), what it holds (the completeness totals and
 * the sources with records in it), and which signed opinion versions rest on it. Read from the
 * `case_bundles` rows and their reports, never from the (large) bundle text.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { CompletenessReport } from './completeness';

/** One assembled version of the case bundle. */
export interface BundleVersionSummary {
  readonly version: number;
  readonly bundleId: string;
  readonly trigger: string;
  readonly createdAt: Date;
  readonly totals: CompletenessReport['totals'];
  /** Names of the sources with at least one record in this version, in the report's order. */
  readonly sources: string[];
  /** Dedupe rules switched off for this assembly. */
  readonly disabledRules: string[];
  /** The signed opinion versions whose case record this version was. */
  readonly opinionVersions: number[];
}

interface SummaryDb {
  version: number;
  bundle_id: string;
  trigger: string;
  created_at: Date;
  totals: CompletenessReport['totals'];
  sources: string[];
  disabled_rules: string[];
  opinion_versions: number[];
}

const SUMMARY_SQL = `
SELECT b.version, b.bundle_id, b.trigger, b.created_at, b.report->'totals' AS totals,
       ARRAY(SELECT s.value->>'name' FROM jsonb_array_elements(b.report->'sources') WITH ORDINALITY AS s(value, n)
             WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(s.value->'resourceTypes') t WHERE (t->>'inBundle')::int > 0)
             ORDER BY s.n) AS sources,
       ARRAY(SELECT jsonb_array_elements_text(COALESCE(b.options->'disabledRules', '[]'::jsonb))) AS disabled_rules,
       ARRAY(SELECT o.version FROM opinion_versions o WHERE o.case_id = b.case_id AND o.bundle_version = b.version ORDER BY o.version) AS opinion_versions
FROM case_bundles b WHERE b.case_id = $1 ORDER BY b.version DESC`;

const toSummary = (r: SummaryDb): BundleVersionSummary => ({
  version: r.version,
  bundleId: r.bundle_id,
  trigger: r.trigger,
  createdAt: r.created_at,
  totals: r.totals,
  sources: r.sources,
  disabledRules: r.disabled_rules,
  opinionVersions: r.opinion_versions,
});

/** Every bundle version of the case, newest first (a case has a handful to a few dozen). */
export async function listBundleVersions(db: Queryable, caseId: string): Promise<BundleVersionSummary[]> {
  return (await db.query<SummaryDb>(SUMMARY_SQL, [caseId])).rows.map(toSummary);
}

/** The case's latest bundle version (its current record), or undefined before the first assembly. */
export async function latestBundleVersion(db: Queryable, caseId: string): Promise<BundleVersionSummary | undefined> {
  const { rows } = await db.query<SummaryDb>(`${SUMMARY_SQL} LIMIT 1`, [caseId]);
  return rows[0] ? toSummary(rows[0]) : undefined;
}

/** A version as the API shows it: times in ISO 8601, with the URL of its bundle. */
export function bundleVersionView(caseId: string, v: BundleVersionSummary) {
  return { ...v, createdAt: v.createdAt.toISOString(), url: `/api/cases/${caseId}/bundle?version=${v.version}` };
}
