import {
  addDays,
  dayOfWeek,
  isCivilDate,
  localDateOf,
  parseCivilDate,
  startOfLocalDay,
  wholeYearsBetween,
} from '../../src/cases/zoned-date';

const NY = 'America/New_York';

describe('civil dates', () => {
  it('parses real dates and rejects impossible ones', () => {
    expect(parseCivilDate('2024-02-29')).toEqual({ year: 2024, month: 2, day: 29 });
    expect(isCivilDate('2023-02-29')).toBe(false);
    expect(isCivilDate('2026-13-01')).toBe(false);
    expect(isCivilDate('2026-1-01')).toBe(false);
    expect(() => parseCivilDate('2026-04-31')).toThrow('"2026-04-31" is not a real calendar date');
  });

  it('adds days across month, leap day and year boundaries', () => {
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
    expect(addDays('2025-02-28', 1)).toBe('2025-03-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2026-03-08', 1)).toBe('2026-03-09'); // DST start in the US does not matter
  });

  it('knows the day of the week', () => {
    expect(dayOfWeek('2026-11-26')).toBe(4); // Thanksgiving, a Thursday
    expect(dayOfWeek('2026-07-04')).toBe(6);
    expect(dayOfWeek('2026-03-01')).toBe(0);
  });

  it('computes ages in whole years, birthday inclusive', () => {
    expect(wholeYearsBetween('2008-03-10', '2026-03-09')).toBe(17);
    expect(wholeYearsBetween('2008-03-10', '2026-03-10')).toBe(18);
    // Born on 29 February: 18 on 1 March in a common year.
    expect(wholeYearsBetween('2008-02-29', '2026-02-28')).toBe(17);
    expect(wholeYearsBetween('2008-02-29', '2026-03-01')).toBe(18);
    expect(wholeYearsBetween('2026-01-01', '2026-01-01')).toBe(0);
  });
});

describe('time zone conversion', () => {
  it('takes the wall-clock date in the zone, not UTC', () => {
    // 03:30 UTC on 10 March is still 9 March in New York (EST, UTC-5).
    expect(localDateOf(new Date('2026-03-10T03:30:00Z'), NY)).toBe('2026-03-09');
    expect(localDateOf(new Date('2026-03-10T05:00:00Z'), NY)).toBe('2026-03-10');
    expect(localDateOf(new Date('2026-03-10T03:30:00Z'), 'UTC')).toBe('2026-03-10');
  });

  it('finds local midnight in winter (UTC-5) and summer (UTC-4)', () => {
    expect(startOfLocalDay('2026-01-15', NY).toISOString()).toBe('2026-01-15T05:00:00.000Z');
    expect(startOfLocalDay('2026-07-15', NY).toISOString()).toBe('2026-07-15T04:00:00.000Z');
    // Midnight twice (a fall-back at 01:00 to 00:00): the day begins at the first one.
    expect(startOfLocalDay('2021-10-29', 'Asia/Gaza').toISOString()).toBe('2021-10-28T21:00:00.000Z');
  });

  it('handles the DST switch days in New York', () => {
    // 8 March 2026: clocks jump 02:00 → 03:00; midnight is still EST.
    expect(startOfLocalDay('2026-03-08', NY).toISOString()).toBe('2026-03-08T05:00:00.000Z');
    expect(startOfLocalDay('2026-03-09', NY).toISOString()).toBe('2026-03-09T04:00:00.000Z');
    // 1 November 2026: clocks fall back 02:00 → 01:00; midnight is still EDT.
    expect(startOfLocalDay('2026-11-01', NY).toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect(startOfLocalDay('2026-11-02', NY).toISOString()).toBe('2026-11-02T05:00:00.000Z');
  });

  it('handles a zone whose DST jump skips midnight', () => {
    // America/Santiago: on 2026-09-06 clocks jump from 00:00 to 01:00 (UTC-4 → UTC-3).
    const start = startOfLocalDay('2026-09-06', 'America/Santiago');
    expect(start.toISOString()).toBe('2026-09-06T04:00:00.000Z');
    expect(localDateOf(start, 'America/Santiago')).toBe('2026-09-06');
    expect(localDateOf(new Date(start.getTime() - 1), 'America/Santiago')).toBe('2026-09-05');
  });

  it('rejects unknown zones and invalid instants', () => {
    expect(() => localDateOf(new Date('2026-01-01T00:00:00Z'), 'Mars/Olympus')).toThrow(RangeError);
    expect(() => localDateOf(new Date('nonsense'), NY)).toThrow('The instant is not a valid date');
  });
});
