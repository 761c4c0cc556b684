/** The spellings of the United States an intake's `address.country` may carry (`cases/us-places.ts`). */
import { isUnitedStates } from '../../src/cases/us-places';

describe('isUnitedStates', () => {
  it.each(['US', 'us', 'USA', 'U.S.', 'U.S.A.', 'U.S', 'U.S.A', 'USA.', 'U. S. A.', 'United States', 'united  states of america', 'The United States', 'the United States of America'])(
    '%s is the United States',
    (country) => {
      expect(isUnitedStates(country)).toBe(true);
    },
  );

  it.each(['Canada', 'Mexico', 'UK', 'United Kingdom', 'Australia', 'United Arab Emirates', 'USSR', ''])('%s is not', (country) => {
    expect(isUnitedStates(country)).toBe(false);
  });
});
