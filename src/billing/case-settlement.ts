/**
 * The payment status a JSON view shows (`GET …/payments`, the case detail's `payment`, the answers of
 * recording and reversing a payment): the balance against the quote (`payment-status.ts`), and for a
 * case that ended without a report its `settlement` (`settlement.ts`: nothing due, what stands to be
 * refunded), as the receipt says. A live or closed case's status is unchanged: no `settlement`.
 * @packageDocumentation
 */
import type { CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { caseEnding, type CaseEnding } from './case-ending';
import type { PaymentStatus } from './payment-status';
import { endedSettlement } from './settlement';

/** `status` with the settlement of a case that ended as `ending`; `status` itself when it did not end so. */
export function settledStatus(status: PaymentStatus, ending: CaseEnding | undefined): PaymentStatus {
  return ending ? { ...status, settlement: endedSettlement(status.paidCents, ending) } : status;
}

/**
 * `status` of the case `record` as the JSON views show it ({@link settledStatus}); reads the case's
 * timeline (with `db`, the transaction's when inside one) only when it ended without a report.
 */
export async function caseSettledStatus(
  db: Queryable,
  timeZone: string,
  record: Pick<CaseRecord, 'id' | 'status' | 'updatedAt'>,
  status: PaymentStatus,
): Promise<PaymentStatus> {
  return settledStatus(status, await caseEnding(db, record, timeZone));
}
