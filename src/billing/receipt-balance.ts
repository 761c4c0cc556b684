/**
 * The closing lines of a receipt: what is still owed, or owed back. For a live case, the balance
 * against the quote (`Balance due`, or a `Credit (to be refunded)` when overpaid). For a case that
 * ended without a report (`ENDED_WITHOUT_REPORT`: the family withdrew, or the request was refused as
 * ineligible) the opinion was never provided: nothing is due, whatever the quote said, and every
 * payment that still stands is owed back to the family (a charge taken as the family withdrew is
 * recorded "to be refunded", `payment-service.ts`; once refunded through the reversal route it no
 * longer stands and leaves the receipt). What such a case owes is decided by `settlement.ts`.
 * @packageDocumentation
 */
import type { CaseEnding } from './case-ending';
import type { PaymentStatus } from './payment-status';
import { endedSettlement } from './settlement';

/** One closing line: a label and an amount. */
export interface ReceiptBalanceLine {
  readonly label: string;
  readonly amountCents: number;
}

/** What the receipt says after the amount paid. */
export interface ReceiptBalance {
  /** Label of the services' total: `Total`, or `Total quoted` when the service was not provided. */
  readonly totalLabel: string;
  /** A sentence saying why nothing is due, for a case that ended without a report. */
  readonly notice?: string;
  readonly lines: readonly ReceiptBalanceLine[];
}

const CREDIT = 'Credit (to be refunded)';

/** The closing lines of a receipt for `status`, the case having ended as `ending` (if it did). */
export function receiptBalance(status: PaymentStatus, ending?: CaseEnding): ReceiptBalance {
  if (!ending) {
    const credit = status.balanceCents < 0;
    return { totalLabel: 'Total', lines: [{ label: credit ? CREDIT : 'Balance due', amountCents: Math.abs(status.balanceCents) }] };
  }
  const why = ending.kind === 'withdrawn' ? `Case withdrawn on ${ending.on}` : `Request found not eligible on ${ending.on}`;
  // What an ended case owes is `settlement.ts`'s to say, for the receipt and the JSON views alike.
  const settled = endedSettlement(status.paidCents, ending);
  const lines: ReceiptBalanceLine[] = [{ label: ending.kind === 'withdrawn' ? 'Withdrawn — nothing due' : 'Not eligible — nothing due', amountCents: 0 }];
  if (settled.refundDueCents > 0) lines.push({ label: CREDIT, amountCents: settled.refundDueCents });
  return { totalLabel: 'Total quoted', notice: `${why}: the second opinion was not provided, so nothing is due.`, lines };
}
