/**
 * Optimistic concurrency with entity tags (RFC 9110 §13.1.1, `If-Match`): a client sends back the
 * `ETag` it read, and the write applies only if the resource still has it.
 */
import { entityTag, listedTags } from './entity-tags';
import { HttpProblem } from './problem';

/** The weak entity tag of a revision number: `W/"7"`. */
export const revisionTag = (revision: number): string => entityTag(String(revision), true);

/**
 * Whether an `If-Match` header allows writing over `current` (a revision, or undefined when the
 * resource does not exist yet). No header: always (the client did not ask for the check). `*`: when
 * the resource exists. Otherwise when one of the listed tags (weak or strong) names `current`.
 */
export function ifMatchAllows(header: string | string[] | undefined, current: number | undefined): boolean {
  const listed = listedTags(header);
  if (listed === undefined) return true;
  if (listed === '*') return current !== undefined;
  return current !== undefined && listed.includes(String(current));
}

/** 412 for a write whose `If-Match` no longer holds. */
export function preconditionFailed(detail: string): HttpProblem {
  return new HttpProblem(412, 'Precondition Failed', detail, [{ field: 'If-Match', pointer: 'header:If-Match', detail }]);
}
