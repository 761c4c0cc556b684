import { isValidNpi, npiCheckDigit } from '../../src/cases/npi';

describe('NPI check digit (CMS Luhn with the 80840 prefix)', () => {
  it('computes the CMS worked example: 123456789 → 3', () => {
    expect(npiCheckDigit('123456789')).toBe(3);
  });

  it('matches a plain Luhn check over 80840 + the 9 digits', () => {
    const luhnCheckDigit = (payload: string): number => {
      let sum = 0;
      [...payload].reverse().forEach((ch, i) => {
        const d = Number(ch);
        sum += i % 2 === 0 ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : d;
      });
      return (10 - (sum % 10)) % 10;
    };
    for (const first9 of ['123456789', '199399999', '100000000', '287654321', '150000000', '111111111']) {
      expect(npiCheckDigit(first9)).toBe(luhnCheckDigit(`80840${first9}`));
    }
  });

  it.each(['1234567893', '1993999998', '1245319599', '1000000004'])('accepts valid NPI %s', (npi) => {
    expect(isValidNpi(npi)).toBe(true);
  });

  it.each([
    ['1234567890', 'wrong check digit'],
    ['1234567894', 'wrong check digit'],
    ['3234567893', 'first digit must be 1 or 2'],
    ['123456789', 'too short'],
    ['12345678933', 'too long'],
    ['12345a7893', 'not digits'],
    ['', 'empty'],
  ])('rejects %s (%s)', (npi) => {
    expect(isValidNpi(npi)).toBe(false);
  });

  it('detects every single-digit error in a valid NPI', () => {
    const valid = '1234567893';
    for (let pos = 0; pos < 10; pos++) {
      for (let d = 0; d <= 9; d++) {
        const candidate = valid.slice(0, pos) + String(d) + valid.slice(pos + 1);
        if (candidate !== valid) expect(isValidNpi(candidate)).toBe(false);
      }
    }
  });

  it('refuses to compute from anything but 9 digits', () => {
    expect(() => npiCheckDigit('12345678')).toThrow(RangeError);
    expect(() => npiCheckDigit('12345678x')).toThrow(RangeError);
  });
});
