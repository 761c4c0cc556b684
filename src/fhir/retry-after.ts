/**
 * Parses a `Retry-After` header, RFC 9110 §10.2.3
 * (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): either delay-seconds
 * (`120`) or an HTTP-date (`Fri, 31 Dec 1999 23:59:59 GMT`).
 *
 * @returns the delay in ms from `now` (0 for a date in the past), or `undefined` when absent or
 *   unparsable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP-date: IMF-fixdate (and the obsolete forms, which Date.parse also reads). Require a
  // weekday-and-GMT shape so that junk like "5 minutes" is not read as a date.
  if (!/^[A-Za-z]{3,9},? .*\bGMT$/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
