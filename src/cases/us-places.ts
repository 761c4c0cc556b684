/**
 * United States postal facts used by the intake contract and eligibility:
 * USPS two-letter state and territory codes and the country spellings that mean
 * the United States.
 *
 * @see https://pe.usps.com/text/pub28/28apb.htm (USPS Publication 28, Appendix B)
 * @packageDocumentation
 */

/** USPS codes of the 50 states and the District of Columbia. */
export const US_STATE_CODES: readonly string[] = [
  'AL', 'AK', 'AZ', 'AR', 'CA', 'CO', 'CT', 'DE', 'DC', 'FL', 'GA', 'HI', 'ID', 'IL', 'IN', 'IA', 'KS',
  'KY', 'LA', 'ME', 'MD', 'MA', 'MI', 'MN', 'MS', 'MO', 'MT', 'NE', 'NV', 'NH', 'NJ', 'NM', 'NY', 'NC',
  'ND', 'OH', 'OK', 'OR', 'PA', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VT', 'VA', 'WA', 'WV', 'WI', 'WY',
];

/** USPS codes of U.S. territories and Armed Forces (APO/FPO) addresses. */
export const US_TERRITORY_AND_MILITARY_CODES: readonly string[] = [
  'AS', 'GU', 'MP', 'PR', 'VI', 'AA', 'AE', 'AP',
];

const ALL_US_CODES = new Set<string>([...US_STATE_CODES, ...US_TERRITORY_AND_MILITARY_CODES]);

/** True when `code` (any case) is a USPS state, territory or military code. */
export function isUsPostalStateCode(code: string): boolean {
  return ALL_US_CODES.has(code.toUpperCase());
}

/**
 * Spellings of the country that mean the United States, compared without dots, spaces or a leading
 * "the": ISO 3166-1 alpha-2 and alpha-3 codes and the English names (FHIR `Address.country` allows
 * either). So `U.S.A`, `U.S`, `USA.` and `The United States` are all the United States.
 */
const UNITED_STATES_NAMES = new Set<string>(['us', 'usa', 'unitedstates', 'unitedstatesofamerica']);

/** True when an address `country` value names the United States (case, dots and spacing ignored). */
export function isUnitedStates(country: string): boolean {
  const folded = country.trim().toLowerCase().replace(/^the\s+/, '').replace(/[.\s]+/g, '');
  return UNITED_STATES_NAMES.has(folded);
}

/** US ZIP code (ZIP 5) or ZIP+4. */
export const US_ZIP_PATTERN = /^\d{5}(?:-\d{4})?$/;
