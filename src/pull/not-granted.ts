/**
 * Types the EHR did not grant this client. A SMART Backend Services token is granted a scope that
 * "can be different from the scopes requested" (https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5):
 * asked for `system/*.read`, an EHR may grant `system/Patient.read system/Observation.read` only, and
 * answer every search of another type 403. A search needs v1 `.read` or v2 `s` on its type, a type of
 * `Patient/$everything` v1 `.read` or v2 `r` (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html,
 * `scopeAllows`).
 *
 * Such a type is not a failed source: the plan leaves its queries out (`planPull`), each recorded as a
 * task that ends `complete` at once, nothing sent, with a warning among its server messages saying
 * what was not asked for and why — where a case manager sees what a server refused
 * (`serverMessages` of the pull's progress, the source's messages in the completeness report, the
 * case record's narrative). A query whose first page the server refuses with 403 and an
 * OperationOutcome `forbidden` or `security` (https://hl7.org/fhir/R4/codesystem-issue-type.html)
 * ends the same way when the scope granted now does not cover the query (it changed since the plan, or
 * was not known then); a 403 for a query the grant covers is the EHR refusing this child's records (a
 * consent, a restriction) and fails the query, as before.
 *
 * Such a task is flagged `not_granted` (migration 045; the message is for people): it fetched nothing,
 * so it is no bound for the next incremental pull (`lastCompletedQueries`), which asks the query in
 * full once the type is granted; and the case record says which sections a source was not asked for
 * ({@link notGrantedTypesBySource}), as long as no later query of that type was asked.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { ellipsized, MAX_TEXT, type ServerIssue } from './server-messages';

/** The code of a not-granted task's message (issue type `forbidden`: "the user does not have the rights to perform this action"). */
const NOT_GRANTED_CODE = 'forbidden';

/** Why: the reason every not-granted message gives. */
const NOT_GRANTED_REASON = "not granted by the EHR's token scope";

/** Most characters of the granted scope quoted in a message. */
const MAX_SCOPE_QUOTED = 200;

const bounded = (text: string): string => ellipsized(text, MAX_TEXT);

/** The message of queries the plan leaves out: `types`, not granted by `scope` (the scope granted). */
export function notGrantedIssue(types: readonly string[], scope: string): ServerIssue {
  const quoted = ellipsized(scope, MAX_SCOPE_QUOTED);
  return {
    severity: 'warning',
    code: NOT_GRANTED_CODE,
    text: bounded(`${types.join(', ')} not asked for: ${NOT_GRANTED_REASON} (SMART scope granted: "${quoted}"), so such records from this source are not in the record`),
  };
}

/**
 * The message a query ends with when the server refused its first page as not granted: 403 with an
 * OperationOutcome issue `forbidden` or `security` (`FhirHttpError.issueCodes`); undefined for any other error.
 * @param types what the query asked for
 */
export function refusedAsNotGranted(err: { readonly status: number; readonly issueCodes: readonly string[] }, types: readonly string[]): ServerIssue | undefined {
  const code = err.issueCodes.find((c) => c === 'forbidden' || c === 'security');
  if (err.status !== 403 || code === undefined) return undefined;
  return {
    severity: 'warning',
    code: NOT_GRANTED_CODE,
    text: bounded(`${types.join(', ')} not pulled: the EHR refused the query (HTTP 403, ${code}), taken as ${NOT_GRANTED_REASON}, so such records from this source are not in the record`),
  };
}

/** The types a task's query asks for: its type, or an `$everything` stream's `_type` (every type: `*`). */
export function typesAskedBy(task: { readonly resourceType: string; readonly requestParams: Readonly<Record<string, string>> }): string[] {
  if (task.resourceType !== '*') return [task.resourceType];
  return task.requestParams['_type']?.split(',').filter(Boolean) ?? ['every type'];
}

/**
 * Source id → the types its EHR did not grant, sorted: per source and type, the newest pull's task
 * that asked for the type decides (its `asked_types`, {@link typesAskedBy} stored at insert: migration 046), so a type granted since and asked
 * again is not said to be missing, and one asked in an earlier pull but refused in the latest is.
 * Sources with none are absent.
 */
export async function notGrantedTypesBySource(db: Queryable, caseId: string): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ source_id: string; types: string[] }>(
    `SELECT source_id, array_agg(type ORDER BY type) AS types FROM (
       SELECT DISTINCT ON (t.source_id, asked.type) t.source_id, asked.type, t.not_granted
       FROM pulls p JOIN pull_tasks t ON t.pull_id = p.id
       CROSS JOIN LATERAL unnest(t.asked_types) AS asked(type)
       WHERE p.case_id = $1 AND t.state IN ('complete', 'failed')
       ORDER BY t.source_id, asked.type, p.created_at DESC, t.not_granted
     ) newest
     WHERE not_granted
     GROUP BY source_id`,
    [caseId],
  );
  return new Map(rows.map((r) => [r.source_id, r.types]));
}
