/**
 * The request body of `POST /api/cases/:id/payments`. Card data anywhere in the body is refused
 * first (see {@link findCardData}), each finding naming its field.
 * @packageDocumentation
 */
import { z } from 'zod';
import { instantField } from '../util/instant-schema';
import { findCardData } from './card-data';

/** How the family paid, as the hospital's cashier records it. */
export const PAYMENT_METHODS = ['card', 'hsa_fsa_card', 'check', 'ach', 'wire'] as const;
/** A payment method. */
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

/** Largest single payment accepted: $100,000.00. */
export const MAX_PAYMENT_CENTS = 10_000_000;

/** A processor's (or bank's) reference: 3–100 letters, digits, dots, dashes, underscores or colons. */
function processorReferenceField(field: string, what: string) {
  return z
    .string({ error: `${field} must be ${what}` })
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{2,99}$/, { error: `${field} must be 3–100 letters, digits, dots, dashes, underscores or colons` });
}

/** `fields`, with card data anywhere in the body refused before they are read (each finding names its field). */
function refusingCardData<T>(fields: z.ZodType<T>): z.ZodType<T> {
  return z.preprocess((raw, ctx) => {
    for (const finding of findCardData(raw)) {
      ctx.issues.push({ code: 'custom', message: finding.message, path: [...finding.path], input: raw });
    }
    return raw;
  }, fields);
}

const Fields = z.strictObject({
  amountCents: z.int({ error: 'amountCents must be a whole number of US cents (85000 is $850.00)' }).min(1, {
    error: 'amountCents must be at least 1 (cents)',
  }).max(MAX_PAYMENT_CENTS, { error: `amountCents must be at most ${MAX_PAYMENT_CENTS} ($100,000.00)` }),
  currency: z.literal('USD', { error: 'currency must be USD' }).default('USD'),
  method: z.enum(PAYMENT_METHODS, { error: `method must be one of: ${PAYMENT_METHODS.join(', ')}` }),
  processorReference: processorReferenceField('processorReference', "the card processor's transaction reference (or the check number)"),
  payer: z.string().trim().min(1, { error: 'payer must not be empty' }).max(200, { error: 'payer must be at most 200 characters' }).optional(),
  receivedAt: instantField('receivedAt', '2026-10-01T14:30:00Z').optional(),
});

/** A validated payment body. */
export type PaymentBody = z.infer<typeof Fields>;

/** Validates a payment body; card data anywhere is refused before the fields are read. */
export const PaymentBodySchema: z.ZodType<PaymentBody> = refusingCardData(Fields);

const ReversalFields = z.strictObject({
  kind: z.enum(['void', 'refund'], { error: 'kind must be void (recorded in error) or refund (given back to the family)' }),
  reason: z.string({ error: 'reason is required: why the payment is taken back (it goes on the timeline)' }).trim().min(1, { error: 'reason must not be empty' }).max(500, { error: 'reason must be at most 500 characters' }),
  refundReference: processorReferenceField('refundReference', "the card processor's refund reference").optional(),
}).refine((r) => r.kind === 'refund' || r.refundReference === undefined, { error: 'refundReference is for a refund only', path: ['refundReference'] });

/** A validated reversal body (`POST …/payments/:paymentId/reversal`). */
export type PaymentReversalBody = z.infer<typeof ReversalFields>;

/** Validates a reversal body; card data anywhere is refused as in a payment body. */
export const PaymentReversalBodySchema: z.ZodType<PaymentReversalBody> = refusingCardData(ReversalFields);
