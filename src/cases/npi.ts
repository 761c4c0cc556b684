/**
 * National Provider Identifier (NPI) check digit.
 *
 * The NPI is 10 digits: 9 identifier digits then one check digit computed with
 * the Luhn "modulus 10 double-add-double" formula as if the number were
 * prefixed with the card-issuer prefix `80840` (80 = health, 840 = USA).
 * Without the prefix, CMS adds the constant 24 (the prefix's contribution).
 * NPIs are issued with a first digit of 1 or 2.
 *
 * @see https://www.cms.gov/Regulations-and-Guidance/Administrative-Simplification/NationalProvIdentStand/Downloads/NPIcheckdigit.pdf
 * @packageDocumentation
 */

/** Contribution of the doubled/undoubled digits of the `80840` prefix to the Luhn sum. */
const PREFIX_80840_SUM = 24;

/**
 * Computes the NPI check digit for the first 9 digits of an NPI.
 * @param first9 - exactly 9 decimal digits
 * @returns the check digit 0–9
 * @throws RangeError when `first9` is not 9 digits
 */
export function npiCheckDigit(first9: string): number {
  if (!/^\d{9}$/.test(first9)) {
    throw new RangeError('An NPI check digit is computed from exactly 9 digits');
  }
  let sum = PREFIX_80840_SUM;
  // Rightmost identifier digit sits next to the (future) check digit, so it is doubled.
  for (let i = 0; i < 9; i++) {
    const digit = Number(first9[8 - i]);
    if (i % 2 === 0) {
      const doubled = digit * 2;
      sum += doubled > 9 ? doubled - 9 : doubled;
    } else {
      sum += digit;
    }
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * True when `npi` is 10 digits, starts with 1 or 2 and carries a valid check digit.
 * @example isValidNpi('1234567893') // true (CMS worked example)
 */
export function isValidNpi(npi: string): boolean {
  if (!/^[12]\d{9}$/.test(npi)) return false;
  return npiCheckDigit(npi.slice(0, 9)) === Number(npi[9]);
}
