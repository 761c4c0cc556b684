/**
 * What a case that ended without a report owes, or is owed: the one place that decides it, for the
 * receipt's closing lines (`receipt-balance.ts`) and the payment status of the JSON views
 * (`case-settlement.ts`). The opinion was never provided, so nothing is due whatever the quote said,
 * and every payment that still stands (not voided, not refunded) is owed back to the family.
 * @packageDocumentation
 */
import type { CaseEnding } from './case-ending';

/** The settlement of a case that ended without a report (`cancelled` or `ineligible`). */
export interface EndedSettlement {
  /** Nothing is due, whatever `balanceCents` says against the quote. */
  readonly state: 'nothing_due';
  /** `withdrawn`: the family withdrew (the case is `cancelled`); `ineligible`: the request was refused. */
  readonly endedAs: CaseEnding['kind'];
  /** `YYYY-MM-DD` in the program's time zone: the day the case ended. */
  readonly endedOn: string;
  /** Cents still owed back to the family: the payments that stand. 0 once all were refunded or voided. */
  readonly refundDueCents: number;
}

/** The settlement of a case that ended as `ending`, its standing payments summing to `paidCents`. */
export function endedSettlement(paidCents: number, ending: CaseEnding): EndedSettlement {
  return { state: 'nothing_due', endedAs: ending.kind, endedOn: ending.on, refundDueCents: paidCents };
}
