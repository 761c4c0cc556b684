/**
 * Money in this service: the price list and quotes are whole US dollars; payments are recorded in
 * **cents** (integers), so no amount is ever a float.
 * @packageDocumentation
 */

/** Whole dollars (price list, quotes) to cents. */
export function dollarsToCents(dollars: number): number {
  if (!Number.isInteger(dollars)) throw new RangeError('dollars must be a whole number');
  return dollars * 100;
}

/** `123456` → `$1,234.56`; negative amounts as `-$12.00`. */
export function formatUsd(cents: number): string {
  if (!Number.isInteger(cents)) throw new RangeError('cents must be an integer');
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toLocaleString('en-US');
  return `${sign}$${dollars}.${String(abs % 100).padStart(2, '0')}`;
}
