import { loadPriceList, type AddOnCode, type PriceList } from '../../src/cases/prices';
import { computeQuote, QuoteError } from '../../src/cases/pricing';

const prices = loadPriceList();

describe('computeQuote', () => {
  it('is the base fee alone when nothing is offered', () => {
    expect(computeQuote(prices, { offered: [], approved: [] })).toEqual({ currency: 'USD', base: 850, addOns: [], total: 850 });
  });

  it('shows offered add-ons without adding them to the total', () => {
    expect(computeQuote(prices, { offered: ['radiology-review', 'pathology-review'], approved: [] })).toEqual({
      currency: 'USD',
      base: 850,
      addOns: [
        { code: 'radiology-review', display: 'Pediatric radiologist review of imaging studies', fee: 350, status: 'offered' },
        { code: 'pathology-review', display: 'Pediatric pathologist review of slides and pathology reports', fee: 400, status: 'offered' },
      ],
      total: 850,
    });
  });

  it('adds an add-on fee once the family approves it', () => {
    const quote = computeQuote(prices, { offered: ['radiology-review', 'pathology-review'], approved: ['pathology-review'] });
    expect(quote.addOns.map((a) => [a.code, a.status])).toEqual([
      ['radiology-review', 'offered'],
      ['pathology-review', 'approved'],
    ]);
    expect(quote.total).toBe(1250);
  });

  it('totals both approved add-ons: 850 + 350 + 400', () => {
    expect(computeQuote(prices, { offered: ['pathology-review', 'radiology-review'], approved: ['radiology-review', 'pathology-review'] }).total).toBe(1600);
  });

  it('lists add-ons in price-list order whatever the order offered', () => {
    const quote = computeQuote(prices, { offered: ['pathology-review', 'radiology-review'], approved: [] });
    expect(quote.addOns.map((a) => a.code)).toEqual(['radiology-review', 'pathology-review']);
  });

  it('ignores a code listed twice', () => {
    expect(computeQuote(prices, { offered: ['radiology-review', 'radiology-review'], approved: ['radiology-review', 'radiology-review'] })).toEqual({
      currency: 'USD',
      base: 850,
      addOns: [{ code: 'radiology-review', display: 'Pediatric radiologist review of imaging studies', fee: 350, status: 'approved' }],
      total: 1200,
    });
  });

  it('refuses to approve an add-on that was never offered', () => {
    const attempt = () => computeQuote(prices, { offered: ['radiology-review'], approved: ['pathology-review'] });
    expect(attempt).toThrow(QuoteError);
    expect(attempt).toThrow('The add-on "pathology-review" cannot be approved because it was never offered.');
    try {
      attempt();
    } catch (err) {
      expect(err).toMatchObject({ code: 'add-on-not-offered', addOn: 'pathology-review' });
    }
  });

  it('refuses unknown add-on codes (e.g. read back from storage)', () => {
    const unknown = ['genetics-review'] as unknown as AddOnCode[];
    expect(() => computeQuote(prices, { offered: unknown, approved: [] })).toThrow(
      'Unknown add-on "genetics-review"; known add-ons are radiology-review, pathology-review.',
    );
  });

  it('uses the fees of the price list it is given', () => {
    const custom: PriceList = {
      ...prices,
      base: { display: 'Opinion', fee: 900 },
      addOns: prices.addOns.map((a) => ({ ...a, fee: a.fee + 25 })),
    };
    const quote = computeQuote(custom, { offered: ['radiology-review'], approved: ['radiology-review'] });
    expect(quote).toMatchObject({ base: 900, total: 1275 });
    expect(Number.isInteger(quote.total)).toBe(true);
  });
});
