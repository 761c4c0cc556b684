import { quoteOfCase } from '../../src/billing/case-quote';
import { paymentStatus } from '../../src/billing/payment-status';
import { loadPriceList, type PriceList } from '../../src/cases/prices';
import { computeQuote } from '../../src/cases/pricing';

/** What a family was quoted stays what it owes: a new price list prices new cases and new offers. */
const then = loadPriceList();
const raised = (p: PriceList, by: number): PriceList => ({ ...p, base: { ...p.base, fee: p.base.fee + by }, addOns: p.addOns.map((a) => ({ ...a, fee: a.fee + by })) });

it('keeps the base fee quoted at intake and each add-on fee as offered when the price list changes', () => {
  const atIntake = computeQuote(then, { offered: [], approved: [] });
  const offered = quoteOfCase(then, { addonsOffered: ['radiology-review'], addonsApproved: [], quote: atIntake });
  const now = raised(then, 50);
  // The family approves the add-on after the prices went up: both fees as they were quoted.
  const approved = quoteOfCase(now, { addonsOffered: ['radiology-review'], addonsApproved: ['radiology-review'], quote: offered });
  const radiology = then.addOns.find((a) => a.code === 'radiology-review')?.fee ?? 0;
  expect(approved.base).toBe(then.base.fee);
  expect(approved.total).toBe(then.base.fee + radiology);
  // Paid in full at the old quote: still paid under the new list.
  expect(paymentStatus(approved, approved.total * 100).state).toBe('paid');
  // An add-on offered after the change is at the new fee.
  const pathologyNow = now.addOns.find((a) => a.code === 'pathology-review')?.fee ?? 0;
  const later = quoteOfCase(now, { addonsOffered: ['radiology-review', 'pathology-review'], addonsApproved: ['radiology-review', 'pathology-review'], quote: approved });
  expect(later.total).toBe(then.base.fee + radiology + pathologyNow);
});

it('prices a case without a usable stored quote with the current list', () => {
  const now = raised(then, 10);
  expect(quoteOfCase(now, { addonsOffered: [], addonsApproved: [], quote: null }).total).toBe(now.base.fee);
  expect(quoteOfCase(now, { addonsOffered: [], addonsApproved: [], quote: { base: 'oops', addOns: 'no' } }).total).toBe(now.base.fee);
});
