/**
 * What a case still needs before it can be assigned: all records in (`records_complete`), a current
 * record the specialist can open (not outdated by a source change, `source-changes.ts`) and payments
 * covering the quote total. Each missing requirement is a sentence for the case manager.
 * @packageDocumentation
 */
import { formatUsd } from '../billing/money';
import type { PaymentStatus } from '../billing/payment-status';
import { describeSourceChanges, type OutdatedRecords } from '../assembly/source-changes';

/** One unmet requirement of assignment. */
export interface MissingRequirement {
  readonly requirement: 'records_complete' | 'current_records' | 'payment';
  readonly detail: string;
}

/** Statuses before records are complete: assignment waits for them. */
const BEFORE_RECORDS: readonly string[] = ['submitted', 'collecting_records'];

/** Every unmet requirement, records first; empty when the case can be assigned. */
export function missingForAssignment(status: string, payment: PaymentStatus, outdated?: OutdatedRecords): MissingRequirement[] {
  const missing: MissingRequirement[] = [];
  if (BEFORE_RECORDS.includes(status)) {
    missing.push({
      requirement: 'records_complete',
      detail: `Records are not complete: the case is ${status}, and assignment needs records_complete (every pull finished).`,
    });
  }
  if (outdated) {
    // The specialist could not open it, and matching would read conditions that may be another child's.
    missing.push({
      requirement: 'current_records',
      detail: `The case record (bundle version ${outdated.version}) is outdated: ${describeSourceChanges(outdated.changes)} after it was assembled; assemble it again (send the source change again, or rebuild).`,
    });
  }
  if (payment.paidCents < payment.totalCents) {
    missing.push({
      requirement: 'payment',
      detail:
        payment.paidCents === 0
          ? `No payment is recorded: the quote total is ${formatUsd(payment.totalCents)}.`
          : `Payment does not cover the quote: ${formatUsd(payment.paidCents)} of ${formatUsd(payment.totalCents)} recorded, ${formatUsd(payment.balanceCents)} still due.`,
    });
  }
  return missing;
}
