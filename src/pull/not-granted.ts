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
 * Such a task fetched nothing: it is no bound for the next incremental pull (`lastCompletedQueries`),
 * which asks the query in full once the type is granted.
 * @packageDocumentation
 */
import { MAX_TEXT, type ServerIssue } from './server-messages';

/** The code of a not-granted task's message (issue type `forbidden`: "the user does not have the rights to perform this action"). */
export const NOT_GRANTED_CODE = 'forbidden';

/** Why: the reason every not-granted message gives. */
export const NOT_GRANTED_REASON = "not granted by the EHR's token scope";

/** Most characters of the granted scope quoted in a message. */
const MAX_SCOPE_QUOTED = 200;

const bounded = (text: string): string => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);

/** The message of queries the plan leaves out: `types`, not granted by `scope` (the scope granted). */
export function notGrantedIssue(types: readonly string[], scope: string): ServerIssue {
  const quoted = scope.length > MAX_SCOPE_QUOTED ? `${scope.slice(0, MAX_SCOPE_QUOTED - 1)}…` : scope;
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

/**
 * SQL: the pull task `t` ended without fetching anything because its types were not granted (its
 * message above, no page). For `lastCompletedQueries`.
 */
export const NOT_GRANTED_TASK_SQL = `(t.pages = 0 AND t.server_messages @> '[{"code": "${NOT_GRANTED_CODE}"}]'::jsonb)`;
