import type { OperationOutcome } from 'fhir/r4';

/**
 * OperationOutcome issue codes and what they mean for retrying.
 * Code system: https://hl7.org/fhir/R4/codesystem-issue-type.html (a hierarchy: the parent code
 * `transient` has children `lock-error`, `no-store`, `exception`, `timeout`, `incomplete`,
 * `throttled`; `invalid` has `structure`, `required`, `value`, `invariant`; `security` has
 * `login`, `unknown`, `expired`, `forbidden`, `suspended`; `processing` has `not-supported`,
 * `duplicate`, `multiple-matches`, `not-found`, `deleted`, `too-long`, `code-invalid`,
 * `extension`, `too-costly`, `business-rule`, `conflict`).
 */

/** Codes that say "try again later": retried up to the attempt limit. */
export const TRANSIENT_ISSUE_CODES: ReadonlySet<string> = new Set(['transient', 'throttled', 'timeout', 'lock-error']);

/**
 * Children of `transient` that are weaker evidence (`exception` is what many servers send for any
 * unhandled bug): retried only a limited number of times, like a 500 without a parsable body.
 */
export const WEAK_TRANSIENT_ISSUE_CODES: ReadonlySet<string> = new Set(['exception', 'incomplete', 'no-store']);

/** Codes that will not change on retry: give up at once. */
export const PERMANENT_ISSUE_CODES: ReadonlySet<string> = new Set([
  'invalid', 'structure', 'required', 'value', 'invariant',
  'security', 'login', 'unknown', 'expired', 'forbidden', 'suspended',
  'processing', 'not-supported', 'duplicate', 'multiple-matches', 'not-found', 'deleted', 'too-long',
  'code-invalid', 'extension', 'too-costly', 'business-rule', 'conflict',
]);

/**
 * The issue codes of a response body, or `undefined` when the body is not an OperationOutcome
 * (empty, HTML error page, truncated JSON). Never throws; reads at most the first 64 KiB.
 */
export function parseIssueCodes(body: Buffer | undefined): string[] | undefined {
  if (!body || body.length === 0 || body.length > 65_536) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isOperationOutcome(parsed)) return undefined;
  return (parsed.issue ?? [])
    .map((issue) => issue.code as unknown)
    .filter((code): code is string => typeof code === 'string')
    .map((code) => (ISSUE_CODE_SHAPE.test(code) ? code : 'unrecognized'));
}

/**
 * Issue codes end up in error messages, events and logs, so anything not shaped like a code from
 * the IssueType value set (a server could put free text there) is replaced.
 */
const ISSUE_CODE_SHAPE = /^[a-z][a-z-]{0,39}$/;

function isOperationOutcome(value: unknown): value is OperationOutcome {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}

/** How a set of issue codes bears on retrying. */
export type IssueCodeClass = 'transient' | 'weak-transient' | 'permanent' | 'unknown';

/** Permanent wins over transient (a server that says both has told us the request is wrong). */
export function classifyIssueCodes(codes: readonly string[]): IssueCodeClass {
  if (codes.some((code) => PERMANENT_ISSUE_CODES.has(code))) return 'permanent';
  if (codes.some((code) => TRANSIENT_ISSUE_CODES.has(code))) return 'transient';
  if (codes.some((code) => WEAK_TRANSIENT_ISSUE_CODES.has(code))) return 'weak-transient';
  return 'unknown';
}
