/**
 * What a payment receipt says, built from the case, its quote and its payments. Pure: rendering
 * is in `receipt-pdf.ts`.
 *
 * Date of service: the day the specialist's opinion was signed (the service rendered) when it has
 * been; before that, the day the case was opened (the service requested).
 *
 * A case that ended without a report (withdrawn or ineligible) carries its {@link CaseEnding}:
 * its receipt says nothing is due and what was paid is to be refunded (`receipt-balance.ts`).
 * @packageDocumentation
 */
import type { Intake } from '../cases/intake-schema';
import type { PriceList } from '../cases/prices';
import type { Quote } from '../cases/pricing';
import { dollarsToCents } from './money';
import type { PaymentRecord } from './payment-repository';
import { paymentStatus, type PaymentStatus } from './payment-status';
import type { CaseEnding } from './case-ending';
import { localDateOf } from '../cases/zoned-date';

/** Name of the program on receipts. */
export const PROGRAM_NAME = 'Online Second Opinion Program';

/** Human labels of payment methods. */
export const METHOD_LABELS: Readonly<Record<string, string>> = {
  card: 'Card',
  hsa_fsa_card: 'HSA/FSA card',
  check: 'Check',
  ach: 'Bank transfer (ACH)',
  wire: 'Wire transfer',
};

/** One billed line. */
export interface ReceiptLine {
  readonly description: string;
  readonly amountCents: number;
}

/** One payment line. */
export interface ReceiptPayment {
  /** `YYYY-MM-DD` in the program's time zone. */
  readonly date: string;
  readonly method: string;
  readonly reference: string;
  readonly amountCents: number;
}

/** Everything printed on a receipt. */
export interface Receipt {
  readonly programName: string;
  readonly caseId: string;
  readonly patientName: string;
  readonly payer: string;
  /** `YYYY-MM-DD`. */
  readonly dateOfService: string;
  /** `YYYY-MM-DD`. */
  readonly issuedOn: string;
  readonly lines: ReceiptLine[];
  readonly payments: ReceiptPayment[];
  readonly status: PaymentStatus;
  /** Set when the case ended without a report (withdrawn, ineligible): nothing is due. */
  readonly ending?: CaseEnding;
}

/** Inputs of {@link buildReceipt}. */
export interface ReceiptInput {
  readonly caseId: string;
  readonly intake: Intake;
  readonly createdAt: Date;
  /** When the opinion was first signed, if it has been. */
  readonly signedAt?: Date;
  readonly quote: Quote;
  readonly prices: PriceList;
  readonly payments: readonly PaymentRecord[];
  readonly now: Date;
  readonly timeZone: string;
  /** How and when the case ended without a report, if it did (`case-ending.ts`). */
  readonly ending?: CaseEnding;
}

/** Builds the receipt: base fee and approved add-ons, every payment, amount paid and balance. */
export function buildReceipt(input: ReceiptInput): Receipt {
  const { intake, quote, timeZone } = input;
  const lines: ReceiptLine[] = [
    { description: input.prices.base.display, amountCents: dollarsToCents(quote.base) },
    ...quote.addOns.filter((a) => a.status === 'approved').map((a) => ({ description: a.display, amountCents: dollarsToCents(a.fee) })),
  ];
  const payers = [...new Set(input.payments.map((p) => p.payer).filter((p): p is string => Boolean(p)))];
  const paid = input.payments.reduce((sum, p) => sum + p.amountCents, 0);
  return {
    programName: PROGRAM_NAME,
    caseId: input.caseId,
    patientName: [...intake.patient.name.given, intake.patient.name.family].join(' '),
    payer: payers.length > 0 ? payers.join(', ') : intake.requester.name,
    dateOfService: localDateOf(input.signedAt ?? input.createdAt, timeZone),
    issuedOn: localDateOf(input.now, timeZone),
    lines,
    payments: input.payments.map((p) => ({
      date: localDateOf(p.receivedAt, timeZone),
      method: METHOD_LABELS[p.method] ?? p.method,
      reference: p.processorReference,
      amountCents: p.amountCents,
    })),
    status: paymentStatus(quote, paid),
    ...(input.ending ? { ending: input.ending } : {}),
  };
}
