/**
 * Parses a `Retry-After` header, RFC 9110 §10.2.3
 * (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): either delay-seconds
 * (`120`) or an HTTP-date in any of its three forms (RFC 9110 §5.6.7,
 * https://www.rfc-editor.org/rfc/rfc9110#http.date: "A recipient that parses a timestamp value in an
 * HTTP field MUST accept all three HTTP-date formats"): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and ANSI C's asctime form
 * (`Sun Nov  6 08:49:37 1994`, GMT though it does not say so).
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
  const at = parseHttpDate(trimmed);
  if (at === undefined) return undefined;
  return Math.max(0, at - (serverClock(date) ?? now));
}

/** The instant of a `Date` header (an HTTP-date, any of its forms), or undefined. */
function serverClock(value: string | string[] | undefined): number | undefined {
  const header = (Array.isArray(value) ? value[0] : value)?.trim();
  return header === undefined ? undefined : parseHttpDate(header);
}

/**
 * An HTTP-date (RFC 9110 §5.6.7) as epoch ms, or undefined. IMF-fixdate and the RFC 850 form are read
 * by `Date.parse` once the text has their shape (weekday first, GMT last), so that junk like
 * "5 minutes" is not read as a date. The asctime form carries no zone: `Date.parse` would read it as
 * the host's local time, so it is read here, as GMT.
 */
export function parseHttpDate(text: string): number | undefined {
  const asctime = ASCTIME_DATE.exec(text);
  if (asctime) {
    const [, mon = '', day = '', hh = '', mm = '', ss = '', year = ''] = asctime;
    const month = MONTHS.indexOf(mon);
    const [d, h, m, s] = [Number(day), Number(hh), Number(mm), Number(ss)];
    if (d < 1 || d > 31 || h > 23 || m > 59 || s > 60) return undefined;
    return Date.UTC(Number(year), month, d, h, m, s);
  }
  if (!HTTP_DATE_SHAPE.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** IMF-fixdate and the obsolete RFC 850 form (and what else Date.parse reads of that shape): weekday first, GMT last. */
const HTTP_DATE_SHAPE = /^[A-Za-z]{3,9},? .*\bGMT$/;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year` (RFC 9110 §5.6.7). */
const ASCTIME_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{2}| \d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;
