import { serverTimeOf } from '../../src/pull/server-time';

/**
 * The EHR's time of a query's first page may come from the response's HTTP `Date` header, an
 * HTTP-date (RFC 9110 §5.6.7, https://www.rfc-editor.org/rfc/rfc9110#http.date): "A recipient that
 * parses a timestamp value in an HTTP field MUST accept all three HTTP-date formats", all of them GMT.
 * Read as the host's local time (plain `Date.parse` of the asctime form, which names no zone) the
 * bound of the next re-pull would move by the host's UTC offset — later, east of Greenwich, and so
 * miss the records changed in between. Text that is not an HTTP-date is no time at all.
 *
 * Run under a zone other than UTC to see the asctime case:
 * `TZ=America/Denver NODE_OPTIONS=--experimental-vm-modules npx jest test/pull/server-time-http-date.part.ts`
 * (the junk cases fail on any zone).
 */
describe("the EHR time of a first page, from the response's HTTP Date", () => {
  const page = (date: string, lastUpdated?: string) => ({
    envelope: { resourceType: 'Bundle' as const, type: 'searchset' as const, ...(lastUpdated ? { meta: { lastUpdated } } : {}) },
    date,
  });
  const at = (date: string): string | undefined => serverTimeOf(page(date))?.toISOString();

  it('reads all three HTTP-date forms as GMT, whatever the host zone', () => {
    expect(at('Sun, 06 Nov 1994 08:49:37 GMT')).toBe('1994-11-06T08:49:37.000Z');
    expect(at('Sunday, 06-Nov-94 08:49:37 GMT')).toBe('1994-11-06T08:49:37.000Z');
    // asctime: GMT though it does not say so.
    expect(at('Sun Nov  6 08:49:37 1994')).toBe('1994-11-06T08:49:37.000Z');
    expect(at('Tue Nov  3 09:15:07 2026')).toBe('2026-11-03T09:15:07.000Z');
    // The earlier of meta.lastUpdated and Date still holds with an asctime Date.
    expect(serverTimeOf(page('Tue Nov  3 09:15:07 2026', '2026-11-03T09:15:09Z'))).toEqual(new Date('2026-11-03T09:15:07Z'));
  });

  it('refuses a Date that is not an HTTP-date, rather than reading some time into it', () => {
    for (const junk of ['5', '2026', '11/03/2026', 'x 2026', 'Tue, 03 Nov 2026 09:15:07', '2026-11-03T09:15:07Z', 'not a date', '']) {
      expect({ junk, at: at(junk) }).toEqual({ junk, at: undefined });
    }
    // A junk Date does not hide a good meta.lastUpdated.
    expect(serverTimeOf(page('2026', '2026-11-03T09:15:09Z'))).toEqual(new Date('2026-11-03T09:15:09Z'));
  });
});
