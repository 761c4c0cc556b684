/**
 * Recording payments taken by the hospital's card processor (or by check), and where they stand
 * against the quote. A processor reference is recorded once: sending the same payment again
 * answers the recorded one; the same reference with other facts is a conflict.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { CaseServiceDeps } from '../cases/case-service';
import type { Intake } from '../cases/intake-schema';
import { insertCaseEvent } from '../db/case-repository';
import { conflict, notFound } from '../http/problem';
import { logger } from '../log';
import { caseFor, fieldProblem, nowOf } from './billing-deps';
import { primaryRole, type Principal } from '../http/auth';
import { quoteOfCase } from './case-quote';
import { caseSettledStatus } from './case-settlement';
import { formatUsd } from './money';
import {
  findPaymentByReference, insertPayment, listPayments, lockPayment, lockPaymentReference, paidCents, reversePaymentRow, standingCents, type PaymentRecord, type PaymentReversal,
} from './payment-repository';
import type { PaymentBody, PaymentReversalBody } from './payment-schema';
import { paymentStatus, type PaymentStatus } from './payment-status';
import { paymentStatusData, paymentStatusNote } from './payment-status-note';

/** A payment as the API shows it. */
export interface PaymentView {
  readonly id: string;
  readonly amountCents: number;
  readonly currency: 'USD';
  readonly method: string;
  readonly processorReference: string;
  readonly payer: string | null;
  readonly receivedAt: string;
  readonly recordedBy: string;
  /** Voided (recorded in error) or refunded: listed, not counted toward the quote. */
  readonly reversal: (Omit<PaymentReversal, 'at'> & { readonly at: string }) | null;
}

/** The payments of a case with the quote and balance (and, once it ended without a report, its settlement). */
export interface PaymentsView {
  readonly items: PaymentView[];
  readonly status: PaymentStatus;
}

/** The API view of a payment row. */
export function paymentView(p: PaymentRecord): PaymentView {
  return {
    id: p.id,
    amountCents: p.amountCents,
    currency: p.currency,
    method: p.method,
    processorReference: p.processorReference,
    payer: p.payer,
    receivedAt: p.receivedAt.toISOString(),
    recordedBy: p.recordedBy,
    reversal: p.reversal ? { ...p.reversal, at: p.reversal.at.toISOString() } : null,
  };
}

function samePayment(a: PaymentRecord, caseId: string, body: PaymentBody): boolean {
  return a.caseId === caseId && a.amountCents === body.amountCents;
}

/**
 * Records a payment (`POST /api/cases/:id/payments`); `created` is false when the same
 * processor reference had been recorded for this case and amount before.
 * @throws HttpProblem 409 when the reference is recorded with another case, amount or method
 */
export async function recordPayment(
  deps: CaseServiceDeps,
  caseId: string,
  body: PaymentBody,
  actor: Principal,
): Promise<{ created: boolean; payment: PaymentView; status: PaymentStatus }> {
  const now = nowOf(deps);
  const receivedAt = body.receivedAt ? new Date(body.receivedAt) : now;
  if (receivedAt.getTime() > now.getTime() + 5 * 60_000) {
    throw fieldProblem('receivedAt', 'receivedAt is in the future; record a payment once the processor has taken it.');
  }
  const outcome = await deps.db.transaction(async (tx) => {
    // Money the processor took is recorded whatever the case's status: a balance paid after the case
    // closed (an add-on approved late), or a charge taken as the family withdrew (to be refunded),
    // must be on the case's ledger and receipt, never refused.
    const record = await caseFor(tx, caseId, true);
    const payer = body.payer ?? (record.intake as Intake).requester.name;
    const id = randomUUID();
    // One processor charge is one payment, whichever card method it is recorded under (migration 029).
    await lockPaymentReference(tx, body.processorReference);
    const earlier = await findPaymentByReference(tx, body.method, body.processorReference, caseId);
    const inserted = earlier === undefined && await insertPayment(tx, {
      id,
      caseId,
      amountCents: body.amountCents,
      method: body.method,
      processorReference: body.processorReference,
      payer,
      receivedAt,
      recordedBy: actor.sub,
    });
    const quote = quoteOfCase(deps.domain.prices, record);
    // A withdrawn or ineligible case owes nothing: its status says so (`settlement`), as its receipt.
    const statusNow = async (): Promise<PaymentStatus> =>
      caseSettledStatus(tx, deps.config.programTimeZone, record, paymentStatus(quote, await paidCents(tx, caseId)));
    if (!inserted) {
      // Read under the reference's lock: an INSERT refused without an earlier payment is a conflict too.
      if (!earlier || !samePayment(earlier, caseId, body)) {
        throw conflict(`processorReference ${body.processorReference} is already recorded for another payment.`, {
          field: 'processorReference',
        });
      }
      if (earlier.method !== body.method) {
        throw conflict(`processorReference ${body.processorReference} is already recorded as a ${earlier.method} payment: one charge of the card processor is one payment.`, {
          field: 'processorReference',
        });
      }
      return { created: false, payment: earlier, status: await statusNow() };
    }
    const status = await statusNow();
    await insertCaseEvent(tx, {
      caseId,
      type: 'payment_recorded',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      at: now,
      reason: `${formatUsd(body.amountCents)} by ${body.method}; ${paymentStatusNote(status)}.`,
      data: { paymentId: id, amountCents: body.amountCents, method: body.method, ...paymentStatusData(status) },
    });
    const payment = (await listPayments(tx, caseId)).find((p) => p.id === id);
    if (!payment) throw new Error('payment vanished inside its own transaction');
    return { created: true, payment, status };
  });
  if (outcome.created) logger.info('payment recorded', { caseId, state: outcome.status.state });
  return { created: outcome.created, payment: paymentView(outcome.payment), status: outcome.status };
}

/**
 * `GET /api/cases/:id/payments`: every payment and the balance against the current quote; for a
 * case that ended without a report, the `settlement` too (nothing due, what stands to be refunded).
 */
export async function getPayments(deps: CaseServiceDeps, caseId: string): Promise<PaymentsView> {
  const record = await caseFor(deps.db, caseId, false);
  const payments = await listPayments(deps.db, caseId);
  const status = paymentStatus(quoteOfCase(deps.domain.prices, record), standingCents(payments));
  return { items: payments.map(paymentView), status: await caseSettledStatus(deps.db, deps.config.programTimeZone, record, status) };
}

/**
 * Takes a payment back: `void` for one recorded in error (the processor never took that money),
 * `refund` for one given back to the family (with the processor's refund reference). The payment
 * stays on the ledger with who, when and why, and no longer counts toward the quote; the timeline
 * says so. A case already assigned stays assigned: the balance due shows in its payments.
 * @throws HttpProblem 404 for a payment the case does not have; 409 for one already taken back
 */
export async function reversePayment(
  deps: CaseServiceDeps,
  caseId: string,
  paymentId: string,
  request: PaymentReversalBody,
  actor: Principal,
): Promise<{ payment: PaymentView; status: PaymentStatus }> {
  const now = nowOf(deps);
  const outcome = await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true);
    const payment = await lockPayment(tx, caseId, paymentId);
    if (!payment) throw notFound(`Payment ${paymentId} of case ${caseId}`);
    if (payment.reversal) {
      throw conflict(`Payment ${paymentId} was already ${payment.reversal.kind === 'void' ? 'voided' : 'refunded'} on ${payment.reversal.at.toISOString()} by ${payment.reversal.by}.`, {
        reversal: paymentView(payment).reversal,
      });
    }
    const reversal = { kind: request.kind, reason: request.reason, by: actor.sub, at: now, refundReference: request.refundReference ?? null };
    await reversePaymentRow(tx, paymentId, reversal);
    const status = await caseSettledStatus(tx, deps.config.programTimeZone, record, paymentStatus(quoteOfCase(deps.domain.prices, record), await paidCents(tx, caseId)));
    await insertCaseEvent(tx, {
      caseId,
      type: 'payment_reversed',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      at: now,
      reason: `${formatUsd(payment.amountCents)} ${request.kind === 'void' ? 'voided' : 'refunded'}: ${request.reason}; ${paymentStatusNote(status)}.`,
      data: { paymentId, kind: request.kind, amountCents: payment.amountCents, ...paymentStatusData(status) },
    });
    return { payment: { ...payment, reversal }, status };
  });
  logger.info('payment reversed', { caseId, state: outcome.status.state });
  return { payment: paymentView(outcome.payment), status: outcome.status };
}
