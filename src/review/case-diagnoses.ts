/**
 * The diagnosis codes of a case, for specialist matching: the intake's diagnosis codes (what the
 * family asks about) and the codes of the Conditions in the latest assembled case bundle that are
 * not resolved, inactive, refuted or entered in error.
 * @packageDocumentation
 */
import type { Intake } from '../cases/intake-schema';
import type { CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import type { CaseDiagnosisCode } from './specialty-matching';

const INACTIVE_CLINICAL = new Set(['resolved', 'inactive', 'remission']);
const NOT_TRUE = new Set(['refuted', 'entered-in-error']);

interface ConditionCodingRow {
  system: string | null;
  code: string | null;
  clinical: string | null;
  verification: string | null;
}

/**
 * Codings of the Conditions of the newest bundle version, read inside PostgreSQL (the bundle can
 * hold many thousand resources; only Condition codes leave the database). The version's JSON is its
 * `bundle` value (versions stored before migration 008) or else its parts joined in order; `latest`
 * picks the version first so that only its parts are joined.
 */
async function bundleConditionCodes(db: Queryable, caseId: string): Promise<CaseDiagnosisCode[]> {
  const { rows } = await db.query<ConditionCodingRow>(
    `WITH latest AS (SELECT case_id, version, bundle FROM case_bundles WHERE case_id = $1 ORDER BY version DESC LIMIT 1),
     doc AS (
       SELECT COALESCE(latest.bundle, (
         SELECT string_agg(p.part, '' ORDER BY p.n) FROM case_bundle_parts p WHERE p.case_id = latest.case_id AND p.version = latest.version
       )::json) AS bundle
       FROM latest
     ),
     conditions AS (
       SELECT e->'resource' AS r FROM doc, json_array_elements(doc.bundle->'entry') e
       WHERE e->'resource'->>'resourceType' = 'Condition'
     )
     SELECT c->>'system' AS system, c->>'code' AS code,
            r->'clinicalStatus'->'coding'->0->>'code' AS clinical,
            r->'verificationStatus'->'coding'->0->>'code' AS verification
     FROM conditions,
          json_array_elements(CASE WHEN json_typeof(r->'code'->'coding') = 'array' THEN r->'code'->'coding' ELSE '[]'::json END) c`,
    [caseId],
  );
  return rows
    .filter((r) => r.system && r.code && !INACTIVE_CLINICAL.has(r.clinical ?? '') && !NOT_TRUE.has(r.verification ?? ''))
    .map((r) => ({ system: r.system ?? '', code: r.code ?? '', from: 'records' as const }));
}

/** Intake codes first, then the records' Condition codes (duplicates of intake codes dropped). */
export async function caseDiagnosisCodes(db: Queryable, record: CaseRecord): Promise<CaseDiagnosisCode[]> {
  const intake = record.intake as Intake;
  const fromIntake: CaseDiagnosisCode[] = (intake.diagnosis.codes ?? []).map((c) => ({ system: c.system, code: c.code, from: 'intake' }));
  const seen = new Set(fromIntake.map((c) => `${c.system}|${c.code}`));
  const fromRecords = (await bundleConditionCodes(db, record.id)).filter((c) => {
    const key = `${c.system}|${c.code}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return [...fromIntake, ...fromRecords];
}
