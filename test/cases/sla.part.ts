import { createUsFederalCalendar } from '../../src/cases/business-calendar';
import { computeSla, PROGRAM_TIME_ZONE, SLA_LIMIT_BUSINESS_DAYS, SLA_TARGET_BUSINESS_DAYS, type SlaPause } from '../../src/cases/sla';

const at = (iso: string): Date => new Date(iso);

/** Due dates only, for the calendar cases. */
function dueDates(recordsCompleteAt: string, pauses: SlaPause[] = [], now = recordsCompleteAt) {
  const sla = computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses, now: at(now) });
  return [sla.targetDueDate, sla.limitDueDate];
}

describe('defaults', () => {
  it('are 5 and 7 business days in New York time', () => {
    expect([SLA_TARGET_BUSINESS_DAYS, SLA_LIMIT_BUSINESS_DAYS, PROGRAM_TIME_ZONE]).toEqual([5, 7, 'America/New_York']);
  });
});

describe('due dates on the business calendar', () => {
  it('skips a weekend: records in on Thursday 5 March 2026 → Thursday 12 / Monday 16 March', () => {
    const sla = computeSla({ recordsCompleteAt: at('2026-03-05T15:00:00Z'), now: at('2026-03-10T15:00:00Z') });
    expect(sla).toEqual({
      targetDueDate: '2026-03-12',
      limitDueDate: '2026-03-16',
      // End of the due day in New York (EDT, UTC-4, after 8 March).
      targetDue: at('2026-03-13T03:59:59.999Z'),
      limitDue: at('2026-03-17T03:59:59.999Z'),
      paused: false,
      businessDaysUsed: 3, // Fri 6, Mon 9, Tue 10
      pausedBusinessDays: 0,
      overdue: 'none',
    });
  });

  it('counts from the next business day when records complete on a weekend', () => {
    expect(dueDates('2026-03-07T16:00:00Z')).toEqual(['2026-03-13', '2026-03-17']);
  });

  it('skips Thanksgiving (26 November 2026) but not the day after', () => {
    expect(dueDates('2026-11-23T15:00:00Z')).toEqual(['2026-12-01', '2026-12-03']);
  });

  it('skips program closures given in the calendar', () => {
    const sla = computeSla({
      recordsCompleteAt: at('2026-11-23T15:00:00Z'),
      now: at('2026-11-23T15:00:00Z'),
      calendar: createUsFederalCalendar({ extraClosedDates: ['2026-11-27'] }),
    });
    expect([sla.targetDueDate, sla.limitDueDate]).toEqual(['2026-12-02', '2026-12-04']);
  });

  it('skips Christmas and New Year across the year boundary', () => {
    // Wed 23, Thu 24, [Fri 25], Mon 28, Tue 29, Wed 30 | Thu 31, [Fri 1 Jan], Mon 4 Jan 2027
    expect(dueDates('2026-12-22T15:00:00Z')).toEqual(['2026-12-30', '2027-01-04']);
    const sla = computeSla({ recordsCompleteAt: at('2026-12-22T15:00:00Z'), now: at('2026-12-22T15:00:00Z') });
    expect(sla.limitDue).toEqual(at('2027-01-05T04:59:59.999Z')); // EST, UTC-5
  });

  it('skips observed holidays: Christmas on Friday 24 and New Year on Friday 31 December 2027', () => {
    // Thu 23, [Fri 24], Mon 27, Tue 28, Wed 29, Thu 30 | [Fri 31], Mon 3 Jan, Tue 4 Jan 2028
    expect(dueDates('2027-12-22T15:00:00Z')).toEqual(['2027-12-30', '2028-01-04']);
  });

  it('skips Juneteenth (Friday 19 June 2026)', () => {
    expect(dueDates('2026-06-15T14:00:00Z')).toEqual(['2026-06-23', '2026-06-25']);
  });

  it('skips Independence Day observed on Friday 3 July 2026', () => {
    expect(dueDates('2026-06-29T14:00:00Z')).toEqual(['2026-07-07', '2026-07-09']);
  });

  it('takes day 0 from the program time zone, whatever the UTC date', () => {
    // 04:30 UTC on 5 March is 23:30 on 4 March in New York and 20:30 on 4 March in Los Angeles.
    const recordsCompleteAt = at('2026-03-05T04:30:00Z');
    const now = at('2026-03-05T12:00:00Z');
    const ny = computeSla({ recordsCompleteAt, now });
    const utc = computeSla({ recordsCompleteAt, now, timeZone: 'UTC' });
    const la = computeSla({ recordsCompleteAt, now, timeZone: 'America/Los_Angeles' });
    expect(ny.targetDueDate).toBe('2026-03-11');
    expect(utc.targetDueDate).toBe('2026-03-12');
    expect(utc.targetDue).toEqual(at('2026-03-12T23:59:59.999Z'));
    expect(la.targetDueDate).toBe('2026-03-11');
    expect(la.targetDue).toEqual(at('2026-03-12T06:59:59.999Z')); // PDT, UTC-7
  });

  it('accepts other day counts', () => {
    const sla = computeSla({ recordsCompleteAt: at('2026-03-02T15:00:00Z'), now: at('2026-03-02T15:00:00Z'), targetBusinessDays: 1, limitBusinessDays: 2 });
    expect([sla.targetDueDate, sla.limitDueDate]).toEqual(['2026-03-03', '2026-03-04']);
  });
});

describe('pauses (a business day touched by a pause does not count)', () => {
  // Records complete Monday 2 March 2026, 10:00 EST. Unpaused: due Mon 9 / Wed 11 March.
  const recordsCompleteAt = '2026-03-02T15:00:00Z';

  it('without pauses: due Monday 9 / Wednesday 11 March', () => {
    expect(dueDates(recordsCompleteAt)).toEqual(['2026-03-09', '2026-03-11']);
  });

  it('a pause from Wednesday 14:00 to Thursday 10:00 removes both days', () => {
    const sla = computeSla({
      recordsCompleteAt: at(recordsCompleteAt),
      pauses: [{ from: at('2026-03-04T19:00:00Z'), to: at('2026-03-05T15:00:00Z') }],
      now: at('2026-03-10T16:00:00Z'),
    });
    expect(sla).toMatchObject({
      targetDueDate: '2026-03-11', // Tue 3, Fri 6, Mon 9, Tue 10, Wed 11
      limitDueDate: '2026-03-13',
      paused: false,
      businessDaysUsed: 4,
      pausedBusinessDays: 2,
      overdue: 'none',
    });
  });

  it('a pause ending exactly at local midnight does not touch the next day', () => {
    const pauses = [{ from: at('2026-03-04T14:00:00Z'), to: at('2026-03-05T05:00:00Z') }]; // Wed 09:00 → Thu 00:00 EST
    expect(dueDates(recordsCompleteAt, pauses, '2026-03-06T15:00:00Z')).toEqual(['2026-03-10', '2026-03-12']);
  });

  it('a pause over a weekend only changes nothing', () => {
    const pauses = [{ from: at('2026-03-07T15:00:00Z'), to: at('2026-03-09T00:30:00Z') }]; // Sat 10:00 → Sun 19:30 EST
    expect(dueDates(recordsCompleteAt, pauses, '2026-03-09T15:00:00Z')).toEqual(['2026-03-09', '2026-03-11']);
  });

  it('zero-length pauses, pauses before the records were in, and pauses not begun yet change nothing', () => {
    const pauses = [
      { from: at('2026-03-04T19:00:00Z'), to: at('2026-03-04T19:00:00Z') },
      { from: at('2026-02-25T15:00:00Z'), to: at('2026-02-27T15:00:00Z') },
      { from: at('2026-03-20T15:00:00Z') },
    ];
    const sla = computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses, now: at('2026-03-06T15:00:00Z') });
    expect([sla.targetDueDate, sla.limitDueDate, sla.paused, sla.pausedBusinessDays]).toEqual(['2026-03-09', '2026-03-11', false, 0]);
  });

  it('several pauses add up', () => {
    const pauses = [
      { from: at('2026-03-03T15:00:00Z'), to: at('2026-03-03T16:00:00Z') }, // Tue, one hour
      { from: at('2026-03-06T15:00:00Z'), to: at('2026-03-09T15:00:00Z') }, // Fri → Mon
    ];
    const sla = computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses, now: at('2026-03-10T15:00:00Z') });
    // Counted: Wed 4, Thu 5, Tue 10, Wed 11, Thu 12 | Fri 13, Mon 16
    expect([sla.targetDueDate, sla.limitDueDate, sla.businessDaysUsed, sla.pausedBusinessDays]).toEqual(['2026-03-12', '2026-03-16', 3, 3]);
  });

  it('an open pause makes the due dates provisional, as if the clock resumed now', () => {
    const pauses = [{ from: at('2026-03-05T15:00:00Z') }]; // Thursday 10:00 EST, still open
    const friday = computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses, now: at('2026-03-06T17:00:00Z') });
    expect(friday).toMatchObject({
      paused: true,
      targetDueDate: '2026-03-11', // Tue 3, Wed 4, [Thu 5, Fri 6 paused], Mon 9, Tue 10, Wed 11
      limitDueDate: '2026-03-13',
      businessDaysUsed: 2,
      pausedBusinessDays: 2,
      overdue: 'none',
    });
    // Still paused on Monday: Monday is lost too and the dates move out by one business day.
    const monday = computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses, now: at('2026-03-09T15:00:00Z') });
    expect(monday).toMatchObject({ paused: true, targetDueDate: '2026-03-12', limitDueDate: '2026-03-16', businessDaysUsed: 2, pausedBusinessDays: 3 });
  });

  it('a pause whose end is later than now is still open', () => {
    const sla = computeSla({
      recordsCompleteAt: at(recordsCompleteAt),
      pauses: [{ from: at('2026-03-05T15:00:00Z'), to: at('2026-03-12T15:00:00Z') }],
      now: at('2026-03-06T17:00:00Z'),
    });
    expect([sla.paused, sla.targetDueDate]).toEqual([true, '2026-03-11']);
  });

  it('rejects a pause that ends before it starts, and invalid dates', () => {
    expect(() =>
      computeSla({ recordsCompleteAt: at(recordsCompleteAt), pauses: [{ from: at('2026-03-05T15:00:00Z'), to: at('2026-03-04T15:00:00Z') }], now: at('2026-03-06T15:00:00Z') }),
    ).toThrow('pauses[0] ends before it starts');
    expect(() => computeSla({ recordsCompleteAt: at('garbage'), now: at('2026-03-06T15:00:00Z') })).toThrow('recordsCompleteAt must be a valid date');
    expect(() => computeSla({ recordsCompleteAt: at(recordsCompleteAt), now: at('2026-03-06T15:00:00Z'), targetBusinessDays: 8 })).toThrow(RangeError);
  });
});

describe('overdue flags', () => {
  const recordsCompleteAt = at('2026-03-02T15:00:00Z'); // due end of Mon 9 / Wed 11 March (EDT)

  it.each([
    ['2026-03-09T20:00:00Z', 'none', 5],
    ['2026-03-10T03:59:59.999Z', 'none', 5], // last millisecond of Monday 9 March in New York
    ['2026-03-10T04:00:00.000Z', 'target', 6], // Tuesday 00:00
    ['2026-03-12T03:59:59.999Z', 'target', 7],
    ['2026-03-12T04:00:00.000Z', 'limit', 8],
    ['2026-04-01T12:00:00.000Z', 'limit', 22],
  ])('at %s: %s, %i business days used', (now, overdue, used) => {
    const sla = computeSla({ recordsCompleteAt, now: at(now) });
    expect([sla.overdue, sla.businessDaysUsed]).toEqual([overdue, used]);
  });

  it('stays overdue when a pause starts after the limit has passed', () => {
    const sla = computeSla({ recordsCompleteAt, pauses: [{ from: at('2026-03-12T15:00:00Z') }], now: at('2026-03-13T15:00:00Z') });
    expect(sla).toMatchObject({ paused: true, overdue: 'limit', targetDueDate: '2026-03-09', limitDueDate: '2026-03-11', businessDaysUsed: 7 });
  });

  it('is not overdue (0 days used) when asked before the records were in', () => {
    const sla = computeSla({ recordsCompleteAt, now: at('2026-03-01T15:00:00Z') });
    expect([sla.overdue, sla.businessDaysUsed, sla.targetDueDate]).toEqual(['none', 0, '2026-03-09']);
  });
});
