import { addBusinessDays, createUsFederalCalendar, usFederalHolidays } from '../../src/cases/business-calendar';

const calendar = createUsFederalCalendar();

describe('US federal holidays', () => {
  it('lists the 2026 holidays, with Independence Day observed on Friday 3 July', () => {
    const days = usFederalHolidays(2026);
    expect([...days.keys()].sort()).toEqual([
      '2026-01-01', '2026-01-19', '2026-02-16', '2026-05-25', '2026-06-19', '2026-07-03', '2026-07-04',
      '2026-09-07', '2026-10-12', '2026-11-11', '2026-11-26', '2026-12-25',
    ]);
    expect(days.get('2026-11-26')).toBe('Thanksgiving Day');
    expect(days.get('2026-07-03')).toMatch(/^Independence Day/);
  });

  it('observes a Saturday New Year on the Friday before, in the previous year', () => {
    // 1 January 2028 is a Saturday.
    expect(usFederalHolidays(2027).get('2027-12-31')).toMatch(/^New Year's Day/);
    expect(calendar.isBusinessDay('2027-12-31')).toBe(false);
    expect(usFederalHolidays(2021).has('2021-12-31')).toBe(true); // 1 January 2022, a Saturday
  });

  it('observes Veterans Day on a weekend (not listed as a substitute by date-holidays)', () => {
    expect(usFederalHolidays(2028).get('2028-11-10')).toBe('Veterans Day (observed)'); // Saturday 11 Nov 2028
    expect(usFederalHolidays(2029).get('2029-11-12')).toBe('Veterans Day (observed)'); // Sunday 11 Nov 2029
    expect(usFederalHolidays(2023).get('2023-11-10')).toBe('Veterans Day (observed)');
  });

  it('observes Sunday holidays on the Monday after', () => {
    expect(calendar.isBusinessDay('2022-12-26')).toBe(false); // Christmas 2022 was a Sunday
    expect(calendar.isBusinessDay('2022-06-20')).toBe(false); // Juneteenth 2022 was a Sunday
    expect(calendar.isBusinessDay('2023-01-02')).toBe(false); // New Year 2023 was a Sunday
  });

  it('does not close on observances that are not federal holidays', () => {
    expect(calendar.isBusinessDay('2026-11-27')).toBe(true); // day after Thanksgiving
    expect(calendar.isBusinessDay('2026-12-24')).toBe(true); // Christmas Eve
    expect(calendar.isBusinessDay('2026-12-31')).toBe(true); // New Year's Eve
  });
});

describe('business days', () => {
  it('are weekdays that are not holidays', () => {
    expect(calendar.isBusinessDay('2026-03-06')).toBe(true); // Friday
    expect(calendar.isBusinessDay('2026-03-07')).toBe(false); // Saturday
    expect(calendar.isBusinessDay('2026-03-08')).toBe(false); // Sunday
    expect(calendar.isBusinessDay('2026-11-26')).toBe(false); // Thanksgiving
    expect(calendar.isBusinessDay('2026-06-19')).toBe(false); // Juneteenth
    expect(calendar.isBusinessDay('2026-07-03')).toBe(false); // Independence Day observed
    expect(calendar.closureName('2026-12-25')).toBe('Christmas Day');
    expect(calendar.closureName('2026-03-06')).toBeUndefined();
  });

  it('can include program closures', () => {
    const withClosure = createUsFederalCalendar({ extraClosedDates: ['2026-11-27'] });
    expect(withClosure.isBusinessDay('2026-11-27')).toBe(false);
    expect(withClosure.closureName('2026-11-27')).toBe('Program closure');
    expect(() => createUsFederalCalendar({ extraClosedDates: ['2026-11-31'] })).toThrow(RangeError);
  });

  it('are counted after the start day, skipping weekends and holidays', () => {
    expect(addBusinessDays(calendar, '2026-03-05', 1)).toBe('2026-03-06');
    expect(addBusinessDays(calendar, '2026-03-05', 2)).toBe('2026-03-09');
    expect(addBusinessDays(calendar, '2026-03-07', 1)).toBe('2026-03-09'); // from a Saturday
    expect(addBusinessDays(calendar, '2026-11-23', 3)).toBe('2026-11-27'); // over Thanksgiving
    expect(addBusinessDays(calendar, '2026-12-30', 2)).toBe('2027-01-04'); // over New Year
  });

  it('can skip extra days and rejects non-positive counts', () => {
    expect(addBusinessDays(calendar, '2026-03-02', 2, (d) => d === '2026-03-03')).toBe('2026-03-05');
    expect(() => addBusinessDays(calendar, '2026-03-02', 0)).toThrow(RangeError);
    expect(() => addBusinessDays(calendar, '2026-03-02', 1.5)).toThrow(RangeError);
  });
});
