/**
 * Where a case's payments stand against its quote.
 * @packageDocumentation
 */
import type { Quote } from '../cases/pricing';
import { dollarsToCents } from './money';
import type { EndedSettlement } from './settlement';

/** `paid` once payments cover the quote total; `overpaid` leaves a credit to refund. */
export type PaymentState = 'unpaid' | 'partially_paid' | 'paid' | 'overpaid';

/** Payments against the quote, in cents. */
export interface PaymentStatus {
  readonly currency: 'USD';
  /** The quote total (base + approved add-ons). */
  readonly totalCents: number;
  readonly paidCents: number;
  /** `totalCents - paidCents`: positive is still owed, negative is a credit. */
  readonly balanceCents: number;
  readonly state: PaymentState;
  /**
   * Only for a case that ended without a report (withdrawn, ineligible): nothing is due and what
   * stands is to be refunded. It wins over `balanceCents` and `state`, which still compare the
   * payments with the quote (`case-settlement.ts`). Absent for every other case.
   */
  readonly settlement?: EndedSettlement;
}

/** Compares the sum of payments with the quote total. */
export function paymentStatus(quote: Quote, paid: number): PaymentStatus {
  const totalCents = dollarsToCents(quote.total);
  const balanceCents = totalCents - paid;
  const state: PaymentState = balanceCents < 0 ? 'overpaid' : balanceCents === 0 ? 'paid' : paid === 0 ? 'unpaid' : 'partially_paid';
  return { currency: 'USD', totalCents, paidCents: paid, balanceCents, state };
}
