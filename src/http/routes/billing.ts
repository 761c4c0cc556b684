import { z } from 'zod';
import { decideAddOn, DECISION_CHANNELS, getCaseQuoteAndPayment, offerAddOn } from '../../billing/addon-service';
import { getPayments, recordPayment, reversePayment } from '../../billing/payment-service';
import { PaymentBodySchema, PaymentReversalBodySchema, type PaymentBody, type PaymentReversalBody } from '../../billing/payment-schema';
import { caseReceiptPdf } from '../../billing/receipt-service';
import type { CaseServiceDeps } from '../../cases/case-service';
import { AddOnCodeSchema } from '../../cases/prices';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, uuidParam } from './params';

type NoQuery = Record<string, never>;

const PaymentParams = CaseParams.extend({ paymentId: uuidParam('Payment id must be a UUID') });
type PaymentParams = z.infer<typeof PaymentParams>;

const OfferBody = z.strictObject({
  addOn: AddOnCodeSchema,
  reason: z.string().trim().max(2000, { error: 'reason must be at most 2000 characters' }).optional(),
});
type OfferBody = z.infer<typeof OfferBody>;

const DecisionBody = z.strictObject({
  addOn: AddOnCodeSchema,
  decision: z.enum(['approved', 'declined'], { error: 'decision must be approved or declined' }).default('approved'),
  channel: z.enum(DECISION_CHANNELS, { error: `channel must be one of: ${DECISION_CHANNELS.join(', ')} (how the family told you)` }),
});
type DecisionBody = z.infer<typeof DecisionBody>;

const PaymentStatusSchema = z.object({
  currency: z.literal('USD'),
  totalCents: z.int(),
  paidCents: z.int(),
  balanceCents: z.int(),
  state: z.enum(['unpaid', 'partially_paid', 'paid', 'overpaid']),
  settlement: z
    .object({
      state: z.literal('nothing_due'),
      endedAs: z.enum(['withdrawn', 'ineligible']),
      endedOn: z.iso.date(),
      refundDueCents: z.int(),
    })
    .optional()
    .meta({ description: 'Only for a case that ended without a report (cancelled: withdrawn; ineligible): nothing is due, refundDueCents (the payments still standing) is owed back. Wins over balanceCents and state, which still compare payments with the quote' }),
});

/** Payments, add-on offers and approvals, the quote and the HSA/FSA receipt. */
export function billingRoutes(deps: CaseServiceDeps): AnyRoute[] {
  return [
    defineRoute<PaymentBody, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/payments',
      tag: 'billing',
      summary:
        "Record a payment taken by the hospital's card processor: amountCents (USD cents), method, processorReference. Card data is refused (400 naming the field) and never stored",
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: PaymentBodySchema,
      responses: {
        201: { description: 'Payment recorded, with the balance against the quote' },
        200: { description: 'This processor reference was recorded before (same case and amount): nothing changed' },
        409: { description: 'The reference belongs to another payment (another case or amount, or the same card charge under the other card method). A payment is recorded whatever the case status' },
      },
      handler: async ({ params, body, principal }) => {
        const result = await recordPayment(deps, params.id, body, principal);
        return { status: result.created ? 201 : 200, body: { payment: result.payment, status: result.status } };
      },
    }),
    defineRoute<PaymentReversalBody, NoQuery, PaymentParams>({
      method: 'post',
      path: '/api/cases/:id/payments/:paymentId/reversal',
      tag: 'billing',
      summary:
        'Take a payment back: {kind: void} for one recorded in error, {kind: refund, refundReference?} for one given back to the family, with a reason. It stays listed (who, when, why) and no longer counts toward the quote',
      roles: ['case_manager', 'admin'],
      params: PaymentParams,
      body: PaymentReversalBodySchema,
      responses: {
        200: { description: 'The payment, taken back, and where the case now stands' },
        404: { description: 'No such case, or the case has no such payment' },
        409: { description: 'The payment was already voided or refunded (when and by whom)' },
      },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await reversePayment(deps, params.id, params.paymentId, body, principal) }),
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/payments',
      tag: 'billing',
      summary: 'Payments of a case and where they stand against the quote: unpaid, partially_paid, paid or overpaid, with the balance in cents',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: 'Payments and status', schema: z.object({ items: z.array(z.unknown()), status: PaymentStatusSchema }) } },
      handler: async ({ params }) => ({ status: 200, body: await getPayments(deps, params.id) }),
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/quote',
      tag: 'billing',
      summary: 'The quote (base fee, offered and approved add-ons, total in whole dollars) and the payment status',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: 'Quote and payment status', schema: z.object({ quote: z.unknown(), payment: PaymentStatusSchema }) } },
      handler: async ({ params }) => ({ status: 200, body: await getCaseQuoteAndPayment(deps, params.id) }),
    }),
    defineRoute<OfferBody, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/offers',
      tag: 'billing',
      summary: 'Offer an add-on (radiology-review, pathology-review) to the family; its fee counts only once they approve',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: OfferBody,
      responses: { 200: { description: 'The add-on is offered (again: unchanged), with the quote' }, 409: { description: 'The case is closed' } },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await offerAddOn(deps, params.id, body.addOn, body.reason, principal) }),
    }),
    defineRoute<DecisionBody, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/approvals',
      tag: 'billing',
      summary: "Record the family's approval (or decline) of an offered add-on fee; 409 when it was never offered",
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: DecisionBody,
      responses: { 200: { description: 'Decision recorded, with the new quote' }, 409: { description: 'The add-on was never offered' } },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await decideAddOn(deps, params.id, body, principal) }),
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/receipt.pdf',
      tag: 'billing',
      summary: 'Payment receipt PDF for HSA/FSA records: patient, payer, date of service, lines, payments with processor references, paid, balance',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      responses: {
        200: { description: 'The receipt', contentType: 'application/pdf' },
        409: { description: 'No payment recorded yet' },
      },
      handler: async ({ params }) => ({
        status: 200,
        contentType: 'application/pdf',
        headers: { 'Content-Disposition': `inline; filename="receipt-${params.id}.pdf"`, 'Cache-Control': 'no-store' },
        body: Buffer.from(await caseReceiptPdf(deps, params.id)),
      }),
    }),
  ] as unknown as AnyRoute[];
}
