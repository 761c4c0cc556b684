/**
 * How the timeline (`payment_recorded`, `payment_reversed`) tells where a case's payments stand:
 * the balance against the quote for a live case; for a case that ended without a report, that
 * nothing is due and what is still to be refunded (its `settlement`), never a balance due.
 * @packageDocumentation
 */
import { formatUsd } from './money';
import type { PaymentStatus } from './payment-status';

/** `balance $350.00`, or `case withdrawn on 2026-11-29: nothing due, $350.00 to be refunded`. */
export function paymentStatusNote(status: PaymentStatus): string {
  const s = status.settlement;
  if (!s) return `balance ${formatUsd(status.balanceCents)}`;
  const ended = s.endedAs === 'withdrawn' ? 'case withdrawn' : 'request found not eligible';
  const refund = s.refundDueCents > 0 ? `${formatUsd(s.refundDueCents)} to be refunded` : 'nothing left to refund';
  return `${ended} on ${s.endedOn}: nothing due, ${refund}`;
}

/** What a timeline event's `data` records of `status`: its state and balance, and its settlement when it has one. */
export function paymentStatusData(status: PaymentStatus): Record<string, unknown> {
  return { state: status.state, balanceCents: status.balanceCents, ...(status.settlement ? { settlement: status.settlement } : {}) };
}
