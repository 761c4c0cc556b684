/**
 * Optimistic concurrency with entity tags (RFC 9110 §13.1.1, `If-Match`): a client sends back the
 * `ETag` it read, and the write applies only if the resource still has it.
 */
import { HttpProblem } from './problem';

/** The weak entity tag of a revision number: `W/"7"`. */
export const revisionTag = (revision: number): string => `W/"${revision}"`;

/**
 * Whether an `If-Match` header allows writing over `current` (a revision, or undefined when the
 * resource does not exist yet). No header: always (the client did not ask for the check). `*`: when
 * the resource exists. Otherwise when one of the listed tags (weak or strong) names `current`.
 */
export function ifMatchAllows(header: string | string[] | undefined, current: number | undefined): boolean {
  if (header === undefined) return true;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (value === '*') return current !== undefined;
  if (current === undefined) return false;
  return value.split(',').some((tag) => tag.trim().replace(/^W\//, '') === `"${current}"`);
}

/** 412 for a write whose `If-Match` no longer holds. */
export function preconditionFailed(detail: string): HttpProblem {
  return new HttpProblem(412, 'Precondition Failed', detail, [{ field: 'If-Match', pointer: 'header:If-Match', detail }]);
}
