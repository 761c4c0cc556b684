/**
 * Rows of `payments` (migration 006).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { PaymentMethod } from './payment-schema';

/** A recorded payment. */
export interface PaymentRecord {
  readonly id: string;
  readonly caseId: string;
  readonly amountCents: number;
  readonly currency: 'USD';
  readonly method: PaymentMethod;
  readonly processorReference: string;
  readonly payer: string | null;
  readonly receivedAt: Date;
  readonly recordedBy: string;
  readonly createdAt: Date;
  /** Voided (recorded in error) or refunded (given back): on the ledger, no longer counted. */
  readonly reversal: PaymentReversal | null;
}

/** How a payment was taken back. */
export interface PaymentReversal {
  readonly kind: 'void' | 'refund';
  readonly reason: string;
  readonly by: string;
  readonly at: Date;
  /** The processor's reference of the refund. */
  readonly refundReference: string | null;
}

interface PaymentRow {
  id: string;
  case_id: string;
  amount_cents: number;
  currency: 'USD';
  method: PaymentMethod;
  processor_reference: string;
  payer_name: string | null;
  received_at: Date;
  recorded_by: string;
  created_at: Date;
  reversal_kind: 'void' | 'refund' | null;
  reversal_reason: string | null;
  reversed_by: string | null;
  reversed_at: Date | null;
  refund_reference: string | null;
}

const COLUMNS =
  'id, case_id, amount_cents, currency, method, processor_reference, payer_name, received_at, recorded_by, created_at, reversal_kind, reversal_reason, reversed_by, reversed_at, refund_reference';

const toPayment = (r: PaymentRow): PaymentRecord => ({
  id: r.id,
  caseId: r.case_id,
  amountCents: r.amount_cents,
  currency: r.currency,
  method: r.method,
  processorReference: r.processor_reference,
  payer: r.payer_name,
  receivedAt: r.received_at,
  recordedBy: r.recorded_by,
  createdAt: r.created_at,
  reversal:
    r.reversal_kind !== null && r.reversed_at !== null
      ? { kind: r.reversal_kind, reason: r.reversal_reason ?? '', by: r.reversed_by ?? '', at: r.reversed_at, refundReference: r.refund_reference }
      : null,
});

/** Methods paid through the hospital's card processor: one space of processor references. */
const CARD_METHODS: readonly PaymentMethod[] = ['card', 'hsa_fsa_card'];

/** The methods whose references are in the same space as `method`'s (migration 029). */
function sameReferenceSpace(method: PaymentMethod): readonly PaymentMethod[] {
  return CARD_METHODS.includes(method) ? CARD_METHODS : [method];
}

/** Inserts a payment unless its processor reference is already recorded (migration 029); true when inserted. */
export async function insertPayment(db: Queryable, p: Omit<PaymentRecord, 'createdAt' | 'currency' | 'reversal'>): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO payments (id, case_id, amount_cents, method, processor_reference, payer_name, received_at, recorded_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT DO NOTHING`,
    [p.id, p.caseId, p.amountCents, p.method, p.processorReference, p.payer, p.receivedAt, p.recordedBy],
  );
  return result.rowCount === 1;
}

/** A payment that holds its processor reference: any but a voided one (migration 035). */
const NOT_VOIDED = "reversal_kind IS DISTINCT FROM 'void'";

/**
 * The payment already recorded under the reference `reference` of `method`: a check number of this
 * case (a check number is the payer's, not unique across families); otherwise the processor's
 * reference, whichever case it belongs to, under any method of the same processor. A voided payment
 * was recorded in error and holds no reference: the charge can be recorded again.
 */
export async function findPaymentByReference(db: Queryable, method: PaymentMethod, reference: string, caseId: string): Promise<PaymentRecord | undefined> {
  const { rows } =
    method === 'check'
      ? await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE method = 'check' AND processor_reference = $1 AND case_id = $2 AND ${NOT_VOIDED}`, [reference, caseId])
      : await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE method = ANY($1::text[]) AND processor_reference = $2 AND ${NOT_VOIDED} ORDER BY created_at LIMIT 1`, [
          sameReferenceSpace(method),
          reference,
        ]);
  return rows[0] ? toPayment(rows[0]) : undefined;
}

/** Serialises, until the transaction ends, the recording of payments under one processor reference. */
export async function lockPaymentReference(tx: Queryable, reference: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('payment-reference:' || $1))", [reference]);
}

/** The payments of a case, oldest first. */
export async function listPayments(db: Queryable, caseId: string): Promise<PaymentRecord[]> {
  const { rows } = await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE case_id = $1 ORDER BY received_at, created_at, id`, [caseId]);
  return rows.map(toPayment);
}

/** Sum of a case's payments that stand (not voided or refunded), in cents. */
export async function paidCents(db: Queryable, caseId: string): Promise<number> {
  const { rows } = await db.query<{ n: string | number | null }>('SELECT COALESCE(sum(amount_cents), 0) AS n FROM payments WHERE case_id = $1 AND reversed_at IS NULL', [caseId]);
  return Number(rows[0]?.n ?? 0);
}

/** Whether a payment stands: not voided or refunded (what `paidCents` sums in SQL). */
export function stands(p: PaymentRecord): boolean {
  return p.reversal === null;
}

/** Sum of the payments in `payments` that stand, in cents. */
export function standingCents(payments: readonly PaymentRecord[]): number {
  return payments.reduce((sum, p) => (stands(p) ? sum + p.amountCents : sum), 0);
}

/** A payment of the case, its row locked until the transaction ends; undefined when the case has no such payment. */
export async function lockPayment(tx: Queryable, caseId: string, id: string): Promise<PaymentRecord | undefined> {
  const { rows } = await tx.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE id = $1 AND case_id = $2 FOR UPDATE`, [id, caseId]);
  return rows[0] ? toPayment(rows[0]) : undefined;
}

/** Records a payment's reversal (call with its row locked, {@link lockPayment}). */
export async function reversePaymentRow(tx: Queryable, id: string, r: PaymentReversal): Promise<void> {
  await tx.query(
    'UPDATE payments SET reversal_kind = $2, reversal_reason = $3, reversed_by = $4, reversed_at = $5, refund_reference = $6 WHERE id = $1 AND reversed_at IS NULL',
    [id, r.kind, r.reason, r.by, r.at, r.refundReference],
  );
}
