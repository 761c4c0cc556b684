import { findCardData, isCardFieldName, looksLikeCardNumber, passesLuhn } from '../../src/billing/card-data';
import { PaymentBodySchema } from '../../src/billing/payment-schema';
import { fieldProblems } from '../../src/http/problem';

// Published test card numbers of the card brands (not real accounts).
const VISA_TEST = '4111111111111111';
const AMEX_TEST = '378282246310005';

describe('card data detection', () => {
  it('checks Luhn like the card brands do', () => {
    expect(passesLuhn(VISA_TEST)).toBe(true);
    expect(passesLuhn(AMEX_TEST)).toBe(true);
    expect(passesLuhn('4111111111111112')).toBe(false);
  });

  it('finds card numbers with or without separators, inside other text, and mistyped brand-like ones', () => {
    expect(looksLikeCardNumber(VISA_TEST)).toBe(true);
    expect(looksLikeCardNumber('4111 1111 1111 1111')).toBe(true);
    expect(looksLikeCardNumber('ref 4111-1111-1111-1111 paid')).toBe(true);
    expect(looksLikeCardNumber(AMEX_TEST)).toBe(true);
    expect(looksLikeCardNumber('4111111111111112')).toBe(true); // 16 digits starting like Visa, Luhn fails: still a card number
  });

  it('finds a card number followed by its security code or expiry in the same run of digits', () => {
    for (const text of [
      'Anne Lovelace 4111 1111 1111 1111 123',
      'wrong card 4111-1111-1111-1111 0926 charged',
      '4111 1111 1111 1111 09 26',
      'paid 12 4111 1111 1111 1111',
      `${AMEX_TEST} 1234`,
      `${VISA_TEST}123`, // glued CVV: 19 digits that are not a card number as a whole
      `${VISA_TEST}0926`, // glued expiry: 20 digits
      '4111-1111-1111-1112 123', // mistyped Visa followed by a CVV: brand-like
    ]) {
      expect({ text, found: looksLikeCardNumber(text) }).toEqual({ text, found: true });
    }
  });

  it('refuses long bank references no more often than before: a window inside an unbroken run is not tried', () => {
    // Fixed, not random: 15–20 digit trace and wire references whose 13-digit windows pass the Luhn check.
    for (const text of ['021000021123456789', '0210000211234567890', '12345678901234567897', '20261130000123456']) {
      expect({ text, found: looksLikeCardNumber(text) }).toEqual({ text, found: false });
    }
  });

  it('leaves phone numbers, dates and amounts in free text alone', () => {
    for (const text of ['Anne Lovelace', 'call +1 617-555-0123 after 5', '617 555 0123 ext 42', 'check 1002 of 2026-10-01 for 850 00', 'Νίκη Ивановa',
      // Two phone numbers side by side: 16-digit spans starting with 6 were taken for a mistyped card.
      '617-555-1234 617-555-9876', '617 555 1234 / 212 555 9876', 'home 617-555-0199 work 617-555-0142']) {
      expect({ text, found: looksLikeCardNumber(text) }).toEqual({ text, found: false });
    }
  });

  it('leaves processor references, check numbers and short digit runs alone', () => {
    for (const text of ['ch_3PqX9v2eZvKYlo2C1a2b3c4d', 'txn-000123', '40012345', 'AUTH:884422', '2026-10-01', '1234567890']) {
      expect({ text, found: looksLikeCardNumber(text) }).toEqual({ text, found: false });
    }
  });

  it('names fields that only card data would use, however they are spelled', () => {
    for (const name of ['cvv', 'CVV2', 'cvc', 'card_number', 'cardNumber', 'pan', 'expiryDate', 'exp_month', 'securityCode', 'track2']) {
      expect({ name, card: isCardFieldName(name) }).toEqual({ name, card: true });
    }
    for (const name of ['amountCents', 'method', 'processorReference', 'payer', 'receivedAt']) {
      expect({ name, card: isCardFieldName(name) }).toEqual({ name, card: false });
    }
  });

  it('walks the whole body and reports each path', () => {
    const findings = findCardData({ amountCents: 85000, card: { number: VISA_TEST, cvv: '123' }, notes: [`pan ${AMEX_TEST}`], n: 4111111111111111 });
    expect(findings.map((f) => f.path.join('.'))).toEqual(['card.number', 'card.cvv', 'notes.0', 'n']);
    for (const f of findings) expect(f.message).not.toContain(VISA_TEST);
  });
});

describe('payment body schema', () => {
  it('refuses card data before reading the fields, naming each field', () => {
    const result = PaymentBodySchema.safeParse({ amountCents: 85000, method: 'card', processorReference: VISA_TEST, cvv: '123' });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(fieldProblems(result.error).map((e) => e.field).sort()).toEqual(['cvv', 'processorReference']);
    expect(JSON.stringify(result.error.issues)).not.toContain('"123"');
  });

  it('takes cents as a whole number and defaults the currency to USD', () => {
    expect(PaymentBodySchema.parse({ amountCents: 85000, method: 'hsa_fsa_card', processorReference: 'ch_123abc' })).toEqual({
      amountCents: 85000,
      currency: 'USD',
      method: 'hsa_fsa_card',
      processorReference: 'ch_123abc',
    });
    const fractional = PaymentBodySchema.safeParse({ amountCents: 850.5, method: 'card', processorReference: 'ch_123abc' });
    expect(fractional.success).toBe(false);
    if (!fractional.success) expect(fieldProblems(fractional.error)[0]?.field).toBe('amountCents');
  });
});
