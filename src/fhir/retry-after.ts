/**
 * Parses a `Retry-After` header, RFC 9110 §10.2.3
 * (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): either delay-seconds
 * (`120`) or an HTTP-date (`Fri, 31 Dec 1999 23:59:59 GMT`).
 *
 * An HTTP-date is a time on the server's clock: the delay it means is measured from the response's
 * `Date` header (RFC 9110 §6.6.1, https://www.rfc-editor.org/rfc/rfc9110#field.date, the same clock),
 * when one is given and parses, so a server whose clock runs minutes ahead of ours is not waited for
 * minutes too long (nor, behind ours, retried at once). Without a `Date`, it is measured from `now`.
 *
 * @param date the response's `Date` header, if any
 * @returns the delay in ms (0 for a date in the past), or `undefined` when absent or unparsable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number, date?: string | string[]): number | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP-date: IMF-fixdate (and the obsolete forms, which Date.parse also reads). Require a
  // weekday-and-GMT shape so that junk like "5 minutes" is not read as a date.
  if (!HTTP_DATE_SHAPE.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - (serverClock(date) ?? now));
}

/** The instant of a `Date` header (an HTTP-date of the same shape as above), or undefined. */
function serverClock(value: string | string[] | undefined): number | undefined {
  const header = (Array.isArray(value) ? value[0] : value)?.trim();
  if (header === undefined || !HTTP_DATE_SHAPE.test(header)) return undefined;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : at;
}

/** IMF-fixdate and the obsolete forms Date.parse also reads: weekday first, GMT last. */
const HTTP_DATE_SHAPE = /^[A-Za-z]{3,9},? .*\bGMT$/;
