/**
 * The quote of a case as it stands now: the base fee plus the add-ons recorded on the case row
 * (`addons_offered`, `addons_approved`), priced with the current price list.
 * @packageDocumentation
 */
import type { CaseRecord } from '../db/case-repository';
import { ADD_ON_CODES, type AddOnCode, type PriceList } from '../cases/prices';
import { computeQuote, type Quote } from '../cases/pricing';

const known = (codes: readonly string[]): AddOnCode[] =>
  codes.filter((c): c is AddOnCode => (ADD_ON_CODES as readonly string[]).includes(c));

/**
 * Prices the case's add-on selection. Codes the price list no longer knows are ignored; an
 * approved add-on counts as offered (an approval always follows an offer).
 */
export function quoteOfCase(prices: PriceList, record: Pick<CaseRecord, 'addonsOffered' | 'addonsApproved'>): Quote {
  const approved = known(record.addonsApproved);
  const offered = [...new Set([...known(record.addonsOffered), ...approved])];
  return computeQuote(prices, { offered, approved });
}
