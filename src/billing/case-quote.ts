/**
 * The quote of a case as it stands now: the base fee plus the add-ons recorded on the case row
 * (`addons_offered`, `addons_approved`), at the fees the family was quoted: the base fee as quoted
 * at intake and each add-on's fee as offered, both kept in the stored quote (`cases.quote`). A new
 * price list applies to new cases and to add-ons offered after it, never to what a family was
 * already told (or has paid).
 * @packageDocumentation
 */
import type { CaseRecord } from '../db/case-repository';
import { ADD_ON_CODES, type AddOnCode, type PriceList } from '../cases/prices';
import { computeQuote, type Quote } from '../cases/pricing';
import { isRecord } from '../util/is-record';

const known = (codes: readonly string[]): AddOnCode[] =>
  codes.filter((c): c is AddOnCode => (ADD_ON_CODES as readonly string[]).includes(c));

const dollars = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined);

/** The fees a stored quote holds: its base fee, and the fee of each add-on it lists. */
function quotedFees(stored: unknown): { base: number | undefined; addOns: ReadonlyMap<string, number> } {
  const addOns = new Map<string, number>();
  if (!isRecord(stored)) return { base: undefined, addOns };
  if (Array.isArray(stored['addOns'])) {
    for (const line of stored['addOns']) {
      const fee = isRecord(line) ? dollars(line['fee']) : undefined;
      if (isRecord(line) && typeof line['code'] === 'string' && fee !== undefined) addOns.set(line['code'], fee);
    }
  }
  return { base: dollars(stored['base']), addOns };
}

/**
 * Prices the case's add-on selection at the fees it was quoted ({@link quotedFees}; the price list's
 * for what the stored quote does not list yet). Codes the price list no longer knows are ignored;
 * an approved add-on counts as offered (an approval always follows an offer).
 */
export function quoteOfCase(prices: PriceList, record: Pick<CaseRecord, 'addonsOffered' | 'addonsApproved' | 'quote'>): Quote {
  const fees = quotedFees(record.quote);
  const asQuoted: PriceList = {
    ...prices,
    base: { ...prices.base, fee: fees.base ?? prices.base.fee },
    addOns: prices.addOns.map((a) => ({ ...a, fee: fees.addOns.get(a.code) ?? a.fee })),
  };
  const approved = known(record.addonsApproved);
  const offered = [...new Set([...known(record.addonsOffered), ...approved])];
  return computeQuote(asQuoted, { offered, approved });
}
