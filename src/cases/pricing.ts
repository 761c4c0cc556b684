/**
 * The quote shown to a family: the base fee plus add-ons, in whole US dollars.
 *
 * An add-on is first *offered* (by the case manager, e.g. when the records hold
 * imaging) and enters the total only once the family's *approval* is recorded.
 * Approving an add-on that was never offered is an error. Listing a code twice
 * is harmless (recording the same approval twice changes nothing).
 * @packageDocumentation
 */
import { ADD_ON_CODES, type AddOnCode, type PriceList } from './prices';

/** One add-on line of a quote. */
export interface QuoteAddOn {
  code: AddOnCode;
  display: string;
  /** Whole dollars. */
  fee: number;
  status: 'offered' | 'approved';
}

/** A quote, in whole US dollars. */
export interface Quote {
  currency: 'USD';
  base: number;
  /** Offered and approved add-ons, in price-list order. */
  addOns: QuoteAddOn[];
  /** `base` plus the fees of approved add-ons only. */
  total: number;
}

/** Add-on selections recorded on a case. */
export interface AddOnSelection {
  offered: readonly AddOnCode[];
  approved: readonly AddOnCode[];
}

/** Thrown by {@link computeQuote} for an inconsistent add-on selection. */
export class QuoteError extends Error {
  override readonly name = 'QuoteError';
  constructor(
    message: string,
    readonly code: 'unknown-add-on' | 'add-on-not-offered',
    readonly addOn: string,
  ) {
    super(message);
  }
}

function assertKnown(code: string): asserts code is AddOnCode {
  if (!(ADD_ON_CODES as readonly string[]).includes(code)) {
    throw new QuoteError(`Unknown add-on "${code}"; known add-ons are ${ADD_ON_CODES.join(', ')}.`, 'unknown-add-on', code);
  }
}

/**
 * Prices a case.
 * @throws QuoteError when a code is unknown or an approved add-on was never offered
 */
export function computeQuote(prices: PriceList, selection: AddOnSelection): Quote {
  const offered = new Set<AddOnCode>();
  for (const code of selection.offered) {
    assertKnown(code);
    offered.add(code);
  }
  const approved = new Set<AddOnCode>();
  for (const code of selection.approved) {
    assertKnown(code);
    if (!offered.has(code)) {
      throw new QuoteError(`The add-on "${code}" cannot be approved because it was never offered.`, 'add-on-not-offered', code);
    }
    approved.add(code);
  }
  const addOns: QuoteAddOn[] = prices.addOns
    .filter((price) => offered.has(price.code))
    .map((price) => ({
      code: price.code,
      display: price.display,
      fee: price.fee,
      status: approved.has(price.code) ? 'approved' : 'offered',
    }));
  const total = prices.base.fee + addOns.filter((a) => a.status === 'approved').reduce((sum, a) => sum + a.fee, 0);
  return { currency: prices.currency, base: prices.base.fee, addOns, total };
}
